"""Entry point for `python -m engine.sandbox.azure_emulator --state-dir DIR [--port N]`.

`fleetctl sandbox up` starts this module as a background process; it writes DIR/azure.json (host, port, CA bundle,
connection strings, ARM base URL and names) and serves until SIGTERM. The implementation is the
`engine.sandbox.azure` package; this module only gives it the documented name.
"""

from engine.sandbox.azure import AzureEmulator, main

__all__ = ["AzureEmulator", "main"]

if __name__ == "__main__":
    main()
