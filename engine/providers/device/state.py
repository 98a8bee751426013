"""The device state file: the fingerprints of what apply wrote, per device address (R7).

Why: what a device cannot read back (a password, a PSK, TLS slots on some modules) is compared by the fingerprint
recorded when apply wrote it. The file sits next to the journal (`.fleetctl/device-state.json`, or
FLEETCTL_DEVICE_STATE); it holds fingerprints of secrets, never values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from engine import errors, fsutil

STATE_ENV = "FLEETCTL_DEVICE_STATE"
STATE_FORMAT = 1


def state_path(env: Mapping[str, str]) -> Path:
    """The device state file: FLEETCTL_DEVICE_STATE, else next to the journal (FLEETCTL_JOURNAL, .fleetctl/)."""
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV])
    journal = env.get("FLEETCTL_JOURNAL")
    return (Path(journal).parent if journal else Path(".fleetctl")) / "device-state.json"


class DeviceState:
    """The recorded fingerprints of what apply wrote, per device address (R7). Written atomically, mode 0600
    (it holds fingerprints of secrets, never values)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise errors.Invalid(f"cannot read the device state file {self.path}: {exc}") from None
        if not isinstance(data, dict) or data.get("formatVersion") != STATE_FORMAT:
            raise errors.Invalid(f"{self.path} is not a fleetctl device state file (format {STATE_FORMAT})")
        return {str(k): dict(v) for k, v in data.get("devices", {}).items()}

    def update(self, entries: Mapping[str, Mapping[str, str]]) -> None:
        devices = self.load()
        for address, recorded in entries.items():
            devices[address] = {**devices.get(address, {}), **recorded}
        text = json.dumps({"formatVersion": STATE_FORMAT, "devices": devices}, indent=1, sort_keys=True) + "\n"
        fsutil.write_atomic(self.path, text)
