"""Shared setup for the device provider tests: a private workspace (fleet, dumps, keys outside the fleet, journal,
device state, artifacts), the devices of the example dumps, and the read-back loop through the simulator.

Private keys are made at run time (never committed); the dumps are copies, so tests may rewrite them."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.providers.device import builtin_models
from engine.sandbox.certs import issue
from tests.conftest import FLEET, Result, run_cli

from .helpers import DATA, DUMPS
from .simulator import push

# (model, device id, dump file) of every example dump
DEVICES = {
    "DA1275B0": ("springcard-springpark", "DA1275B0", "DA1275B0.json"),
    "DA1275B1": ("springcard-springpark", "DA1275B1", "DA1275B1.json"),
    "DA1275B2": ("springcard-springpark", "DA1275B2", "DA1275B2.json"),
    "nina": ("ublox-nina-w13", "D4-CA-6E-0A-1B-2C", "nina-D4-CA-6E-0A-1B-2C.at"),
    "spwf": ("st-spwf01", "00-80-E1-B7-3C-21", "spwf-00-80-E1-B7-3C-21.at"),
    "esp32": ("esp32-nvs", "24-0A-C4-5F-12-9C", "24-0A-C4-5F-12-9C.json"),
}
WIFI_PSK = "correct horse battery"
ADMIN_PASSWORD = "paris-admin-01"
MQTT_PASSWORD = "Mq7t-pass-9x!z"  # the register holds 16 bytes


@dataclass
class Workspace:
    """Folders of one test, and the environment every command of it runs with."""

    root: Path
    fleet: Path
    dumps: Path
    keys: Path
    artifacts: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return Path(self.env["FLEETCTL_DEVICE_STATE"])

    @property
    def journal(self) -> Path:
        return Path(self.env["FLEETCTL_JOURNAL"])

    def cli(self, *args: str) -> Result:
        return run_cli(*args, env=self.env)

    def plan(self, *args: str) -> Result:
        return self.cli("plan", str(self.fleet), "--dumps", str(self.dumps), *args)

    def apply(self, planfile: Path, *args: str) -> Result:
        return self.cli("apply", str(planfile), "--fleet", str(self.fleet), "--artifacts", str(self.artifacts), *args)

    def read_back(self, *names: str) -> None:
        """The engineer pushes the artifacts to these devices (all by default) and reads them back."""
        models = builtin_models()
        for name in names or tuple(DEVICES):
            model, device, dump = DEVICES[name]
            push(models[model], device, self.artifacts, self.dumps / dump)

    def plan_json(self, *args: str) -> dict[str, Any]:
        out = self.root / "plan.json"
        res = self.plan("--out", str(out), *args)
        assert res.exit_code in (0, 2), res.output
        return json.loads(out.read_text())


def workspace(
    tmp: Path, *, example: bool = True, files: dict[str, str] | None = None, env: dict[str, str] | None = None
) -> Workspace:
    """A fleet (the example one, or only `files`), a copy of the example dumps, keys outside the fleet."""
    fleet = tmp / "fleet"
    if example:
        shutil.copytree(FLEET, fleet, ignore=shutil.ignore_patterns("out", ".fleetctl", "dumps"))
    else:
        (fleet / "certs").mkdir(parents=True)
        for name in ("AmazonRootCA1.pem", "client-cert.pem"):
            shutil.copy(DATA / name, fleet / "certs" / name)
    for name, text in (files or {}).items():
        (fleet / name).parent.mkdir(parents=True, exist_ok=True)
        (fleet / name).write_text(text)
    dumps = tmp / "dumps"
    shutil.copytree(DUMPS, dumps)
    home = tmp / "home"
    keys = home / ".fleetctl" / "keys"
    keys.mkdir(parents=True)
    for name in ("nina-D4CA6E0A1B2C", "spwf-0080E1B73C21", "esp32-240AC45F129C"):
        (keys / f"{name}.key").write_text(issue(name).key_pem())
    ws = Workspace(tmp, fleet, dumps, keys, tmp / "out")
    ws.env = {
        "HOME": str(home),
        "FLEETCTL_JOURNAL": str(tmp / "state" / "journal.jsonl"),
        "FLEETCTL_DEVICE_STATE": str(tmp / "state" / "device-state.json"),
        "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
        "FLEETCTL_GIT_COMMIT": "0" * 40,
        "FLEETCTL_ACTOR": "test",
        "FLEETCTL_WIFI_PSK": WIFI_PSK,
        "FLEETCTL_SPRINGPARK_DA1275B0_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **(env or {}),
    }
    return ws


def device_changes(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The device changes of a plan file, by device id."""
    return {c["address"].rsplit("/", 1)[1]: c for c in plan["changes"] if c["address"].startswith("device/")}
