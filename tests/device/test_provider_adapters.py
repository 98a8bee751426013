"""Each adapter through the real CLI: parse → diff → plan → apply (artifacts) → simulated read-back → empty plan.

The DeviceConfigs carry exactly the values of the library's golden cases (tests/device/helpers.py), written as a
field engineer writes them (secrets by reference, certificates from files, the private key outside the fleet),
so the plan's register changes must equal the golden changes.json and the artifacts the golden files, except
for where payload files live (the engine copies public PEMs next to the script and points at key files)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from engine.providers.device import Resolved

from .helpers import FAKE_KEY, GOLDEN, esp_values, nina_values, springpark_device, springpark_group, spwf_values
from .provider_support import ADMIN_PASSWORD, DEVICES, WIFI_PSK, Workspace, device_changes, workspace


def _refs(values: dict[str, Any], refs: dict[str, Any]) -> dict[str, Any]:
    """The helpers' library values with each `Resolved` replaced by the manifest reference that yields it."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict) and isinstance(value.get("content"), Resolved):
            out[name] = {**value, "content": refs[name]}
        elif isinstance(value, Resolved):
            out[name] = refs[name]
        else:
            out[name] = value
    return out


def _manifest(name: str, model: str, group: dict[str, Any], devices: dict[str, Any]) -> str:
    """A DeviceConfig as JSON (which is YAML)."""
    spec = {"model": model, "values": group, "devices": {k: {"values": v} for k, v in devices.items()}}
    return (
        json.dumps(
            {"apiVersion": "device.fleetctl.io/v1", "kind": "DeviceConfig", "metadata": {"name": name}, "spec": spec},
            indent=1,
        )
        + "\n"
    )


def _cases(keys: Path) -> dict[str, tuple[str, str, str]]:
    """golden case → (device, manifest file, manifest text)."""
    key = str(keys / "fake.key")
    ca, cert = {"file": "certs/AmazonRootCA1.pem"}, {"file": "certs/client-cert.pem"}
    return {
        "springpark-DA1275B0": (
            "DA1275B0",
            "readers.yaml",
            _manifest(
                "readers",
                "springcard-springpark",
                springpark_group(),
                {"DA1275B0": _refs(springpark_device(), {"admin_password": {"env": "TEST_ADMIN"}})},
            ),
        ),
        "nina-w13": (
            "nina",
            "nina.yaml",
            _manifest(
                "nina",
                "ublox-nina-w13",
                _refs(nina_values(), {"wifi.psk": {"env": "TEST_PSK"}, "ca": ca, "cert": cert, "key": {"file": key}}),
                {"D4:CA:6E:0A:1B:2C": {}},
            ),
        ),
        "spwf01": (
            "spwf",
            "spwf.yaml",
            _manifest(
                "spwf", "st-spwf01", _refs(spwf_values(), {"f_ca": ca, "f_key": {"file": key}}), {"0080E1B73C21": {}}
            ),
        ),
        "esp32-nvs": (
            "esp32",
            "esp.yaml",
            _manifest(
                "esp",
                "esp32-nvs",
                {},
                {
                    "24-0A-C4-5F-12-9C": _refs(
                        esp_values(), {"wifi_pass": {"env": "TEST_PSK"}, "ca": ca, "cert": cert, "key": {"file": key}}
                    )
                },
            ),
        ),
    }


def _normalised(text: str) -> str:
    """Artifact text without the places payload files live (the engine's differ from the library's golden)."""
    text = re.sub(r"^@file:.*$", "@file:<payload>", text, flags=re.M)
    return re.sub(r"^(\w+),file,(\w+),.*$", r"\1,file,\2,<payload>", text, flags=re.M)


def _allowing(keys: Path) -> str:
    """A Target whose only job here is the file allowance for the key folder outside the fleet (issue 13.5)."""
    return (
        json.dumps(
            {
                "apiVersion": "fleetctl.io/v1",
                "kind": "Target",
                "metadata": {"name": "keys"},
                "spec": {
                    "azure": {
                        "hub": {
                            "hostName": "h.azure-devices.net",
                            "connectionString": {"env": "UNSET_HUB_CONNECTION_STRING"},
                        }
                    },
                    "optional": True,
                    "files": {"allow": [str(keys)]},
                },
            }
        )
        + "\n"
    )


@pytest.fixture
def make(tmp_path: Path):
    def build(case: str) -> tuple[Workspace, str]:
        keys = tmp_path / "secrets"
        keys.mkdir()
        (keys / "fake.key").write_bytes(FAKE_KEY)
        device, name, text = _cases(keys)[case]
        ws = workspace(
            tmp_path,
            example=False,
            files={name: text, "targets.yaml": _allowing(keys)},
            env={"TEST_ADMIN": ADMIN_PASSWORD, "TEST_PSK": WIFI_PSK},
        )
        return ws, device

    return build


@pytest.mark.parametrize("case", ["springpark-DA1275B0", "nina-w13", "spwf01", "esp32-nvs"])
def test_adapter_plan_apply_read_back_is_empty(case: str, make) -> None:
    ws, device = make(case)
    model, device_id, _ = DEVICES[device]
    plan = ws.plan_json("--detailed-exitcode")
    change = device_changes(plan)[device_id]
    assert change["address"] == f"device/{model}/{device_id}" and change["kind"] == "device.DeviceConfig"
    golden = json.loads((GOLDEN / case / "changes.json").read_text())  # the library's rules, unchanged
    assert change["fields"] == [
        {
            "op": "add" if c["before"] is None else "remove" if c["after"] is None else "change",
            "path": ("slots." if c["kind"] == "slot" else "registers.") + c["name"],
            "before": c["before"],
            "after": c["after"],
            **({"sensitive": True} if c["sensitive"] else {}),
        }
        for c in golden
    ]
    assert change["ids"]["planned"] == [[c["kind"], c["name"], c["action"], c["fingerprint"]] for c in golden]
    reasons = [step for step in change["steps"] if not step.startswith(("commit:", "deliver:", "erase"))]
    assert [step.split(": ", 1)[1] for step in reasons] == [c["reason"] for c in golden]
    assert change["steps"][-1].startswith("deliver: ")

    applied = ws.apply(ws.root / "plan.json")
    assert applied.exit_code == 0, applied.output
    assert f"Device artifacts are in {ws.artifacts}/" in applied.stdout
    folder = ws.artifacts / model
    for golden_file in (GOLDEN / case).iterdir():
        if golden_file.name.startswith(device_id) and golden_file.suffix in (".json", ".at", ".csv"):
            written = folder / golden_file.name
            assert _normalised(written.read_text()) == _normalised(golden_file.read_text()), golden_file.name
            secret = any(c["sensitive"] for c in golden if c["kind"] == "register")
            assert stat.S_IMODE(written.stat().st_mode) == (0o600 if secret else 0o644)

    again = ws.plan("--detailed-exitcode")  # artifacts written, device not yet read back
    assert again.exit_code == 2, again.output
    assert "(unreadable)" not in again.stdout and "no recorded fingerprint" not in again.stdout

    ws.read_back(device)
    final = ws.plan("--detailed-exitcode")
    assert final.exit_code == 0, final.output
    assert "No changes." in final.stdout


def test_springcore_script_and_modes(make) -> None:
    """SpringCoreConfig: the JSON with only the changed registers, a script that runs it from its folder."""
    ws, _ = make("springpark-DA1275B0")
    ws.plan_json()
    assert ws.apply(ws.root / "plan.json").exit_code == 0
    folder = ws.artifacts / "springcard-springpark"
    script = folder / "DA1275B0.sh"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert script.read_text().splitlines()[-1] == "SpringCoreConfig --file DA1275B0.json --no-load-defaults"
    assert json.loads((folder / "DA1275B0.json").read_text())["config"]["FF"] == ADMIN_PASSWORD.encode().hex().upper()
    assert stat.S_IMODE((folder / "DA1275B0.json").stat().st_mode) == 0o600


def test_key_file_is_referenced_never_copied(make) -> None:
    """The private key stays where the engineer keeps it: the AT script names that file."""
    ws, _ = make("nina-w13")
    ws.plan_json()
    assert ws.apply(ws.root / "plan.json").exit_code == 0
    script = (ws.artifacts / "ublox-nina-w13" / "D4-CA-6E-0A-1B-2C.at").read_text()
    assert f"@file:{ws.root / 'secrets' / 'fake.key'}" in script
    assert not any(FAKE_KEY in p.read_bytes() for p in ws.artifacts.rglob("*") if p.is_file())


def test_device_plans_are_deterministic(make) -> None:
    ws, _ = make("nina-w13")
    first = ws.plan("--out", str(ws.root / "a.json"))
    second = ws.plan("--out", str(ws.root / "b.json"))
    assert first.exit_code == second.exit_code == 0
    assert (ws.root / "a.json").read_bytes() == (ws.root / "b.json").read_bytes()
    assert first.stdout == second.stdout
