"""Azure IoT Hub + DPS provider: kinds (SDK-free), pure planning rules, the provider, and the SDK client module.

Only `client.py` imports the Azure SDKs; `kinds.py` and `planning.py` import nothing from them, so validating a
manifest never loads an SDK.
"""
