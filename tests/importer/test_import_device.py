"""`fleetctl import --dumps`: device dumps → one DeviceConfig per model that plans clean over the same dumps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from engine.importer.device import secret_env
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
DUMPS = ROOT / "fleet" / "dumps"
FILES = (
    "DA1275B0.json",
    "DA1275B1.json",
    "DA1275B2.json",
    "24-0A-C4-5F-12-9C.json",
    "nina-D4-CA-6E-0A-1B-2C.at",
    "spwf-00-80-E1-B7-3C-21.at",
)
WIFI_PASS = "s3cr3t-Wifi-PSK-42"  # a sensitive, readable register (esp32-nvs wifi/pass) in the dump


@pytest.fixture
def imported(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEETCTL_NOW", "2026-11-21T10:00:00Z")
    monkeypatch.setenv("FLEETCTL_JOURNAL", str(tmp_path / "journal.jsonl"))
    monkeypatch.setenv("FLEETCTL_DEVICE_STATE", str(tmp_path / "device-state.json"))
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for name in FILES:
        shutil.copy(DUMPS / name, dumps / name)
    esp = dumps / "24-0A-C4-5F-12-9C.json"
    doc = json.loads(esp.read_text())
    doc["nvs"]["wifi/pass"] = WIFI_PASS
    esp.write_text(json.dumps(doc, indent=2))
    out = tmp_path / "out"
    res = run_cli("import", "--dumps", str(dumps), "--out", str(out), "--fleet", str(tmp_path / "no-fleet"))
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "Imported 6 device(s)" in res.stdout
    return dumps, out


def test_import_writes_one_config_per_model_and_plans_clean(imported, monkeypatch):
    dumps, out = imported
    assert sorted(p.name for p in (out / "devices").iterdir()) == [
        "esp32-nvs.yaml",
        "springcard-springpark.yaml",
        "st-spwf01.yaml",
        "ublox-nina-w13.yaml",
    ]
    text = (out / "devices" / "springcard-springpark.yaml").read_text()
    for name in ("DA1275B0", "DA1275B1", "DA1275B2"):
        assert f"# imported from {name}.json" in text
    spec = yaml.safe_load(text)["spec"]
    assert spec["model"] == "springcard-springpark"
    b1 = spec["devices"]["DA1275B1"]["values"]
    assert b1["mqtt_broker"] == "a1b2c3d4e5f6g7-ats.iot.us-west-2.amazonaws.com"
    assert b1["profile"] == {"network": "mqtt_client", "primary": "smartreader"}
    assert b1["mqtt_tls"]["tls"] is True and b1["mqtt_tls"]["client_cert_slot"] == 13
    assert b1["location"] == "Paris gate 2"
    # 0289 = 5314030A1E1E is the model default: not written (only registers that differ are)
    assert "mqtt_client_options" not in b1
    assert spec["devices"]["DA1275B0"]["values"] == {} and spec["devices"]["DA1275B2"]["values"] == {}
    spwf = yaml.safe_load((out / "devices" / "st-spwf01.yaml").read_text())["spec"]["devices"]
    assert spwf["00-80-E1-B7-3C-21"]["values"]["ip_hostname"] == "iwm-B7-3C-21"

    env_name = secret_env("esp32-nvs", "24-0A-C4-5F-12-9C", "wifi_pass")
    esp = yaml.safe_load((out / "devices" / "esp32-nvs.yaml").read_text())["spec"]["devices"]
    assert esp["24-0A-C4-5F-12-9C"]["values"] == {"wifi_ssid": "factory-test", "wifi_pass": {"env": env_name}}
    assert env_name in (out / "IMPORT-SECRETS.md").read_text()
    summary = (out / "IMPORT.md").read_text()
    assert "slots (certificates and keys) are not imported" in summary
    assert "mqtt_password" in summary

    # the secret's value, read from the dump as an operator would set it
    value = json.loads((dumps / "24-0A-C4-5F-12-9C.json").read_text())["nvs"]["wifi/pass"]
    monkeypatch.setenv(env_name, value)
    res = run_cli("plan", str(out), "--dumps", str(dumps), "--detailed-exitcode")
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "No changes" in res.stdout


def test_no_secret_from_the_dumps_is_written(imported):
    _, out = imported
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert WIFI_PASS not in path.read_text(), path


def test_dumps_excludes_target_and_needs_one_of_them(tmp_path):
    res = run_cli("import", "--dumps", str(DUMPS), "--target", "aws-eu", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2
    res = run_cli("import", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "--dumps" in res.stderr
