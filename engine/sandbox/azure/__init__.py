"""fleetctl's local Azure emulators: IoT Hub service API, DPS service API and ARM certificates over HTTPS.

See `emulator.py` for why they exist and how the real SDKs are pointed at them.
"""

from .emulator import AzureEmulator, main

__all__ = ["AzureEmulator", "main"]
