"""The example fleet end to end with its device dumps: one plan holding the AWS resources (moto on loopback) and
the register changes of the six example devices, in dependency order; apply creating the cloud resources and
writing the device artifacts; the simulated read-back; and a plan with no changes. Also: secrets never leave the
artifacts, and a saved plan is refused when a dump changed or a secret differs from the planned one."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import boto3

from .provider_support import (
    ADMIN_PASSWORD,
    DEVICES,
    MQTT_PASSWORD,
    WIFI_PSK,
    Workspace,
    device_changes,
    workspace,
)


def endpoint() -> str:
    return boto3.client("iot", region_name="eu-west-2").describe_endpoint(endpointType="iot:Data-ATS")[
        "endpointAddress"
    ]


def test_one_plan_cloud_then_devices_apply_read_back_is_empty(aws_env, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    plan = ws.plan_json("--detailed-exitcode")
    kinds = {c["kind"] for c in plan["changes"]}
    assert {"aws.CACertificate", "aws.Certificate", "aws.Thing", "device.DeviceConfig"} <= kinds
    devices = device_changes(plan)
    assert sorted(devices) == sorted(d[1] for d in DEVICES.values())
    order = [c["address"] for c in plan["changes"]]
    for change in plan["changes"]:
        for dependency in change["dependsOn"]:
            if dependency in order:
                assert order.index(dependency) < order.index(change["address"]), (dependency, change["address"])
    b0 = devices["DA1275B0"]
    assert b0["dependsOn"] == ["aws/aws-eu/Certificate/springpark-da1275b0"]
    assert order.index("aws/aws-eu/Certificate/springpark-da1275b0") < order.index(b0["address"])
    host = endpoint()
    broker = next(f for f in b0["fields"] if f["path"] == "registers.mqtt_broker")
    assert broker == {"op": "change", "path": "registers.mqtt_broker", "before": "", "after": host}
    assert [f["path"] for f in b0["fields"]][-1] == "registers.profile"  # the mode switch goes last
    assert b0["steps"][-1].startswith("deliver: run DA1275B0.sh")
    nina = devices["D4-CA-6E-0A-1B-2C"]
    assert [s for s in nina["steps"] if s.startswith("commit:")] == [
        "commit: AT+UWSCA=0,1",
        "commit: AT&W",
        "commit: AT+CPWROFF",
    ]
    warnings = [d for d in plan["diagnostics"] if d["address"] == "device/springcard-springpark/DA1275B1"]
    assert any("us-west-2" in d["summary"] and "cross-region" in d["summary"] for d in warnings), warnings
    assert all(d["source"]["file"].endswith("devices/paris-readers.yaml") for d in warnings)

    applied = ws.apply(ws.root / "plan.json")
    assert applied.exit_code == 0, applied.output
    assert "23 applied, 0 failed" in applied.stdout
    for model, device, _ in DEVICES.values():
        assert list((ws.artifacts / model).glob(f"{device}.*")), device
    assert (ws.artifacts / "springcard-springpark" / "DA1275B0.json").exists()

    before_read_back = ws.plan_json("--detailed-exitcode")
    assert {c["kind"] for c in before_read_back["changes"]} == {"device.DeviceConfig"}  # the cloud is done
    paths = [f["path"] for c in before_read_back["changes"] for f in c["fields"]]
    assert "registers.admin_password" not in paths and "registers.wifi.psk" not in paths  # recorded (R7)

    ws.read_back()
    final = ws.plan("--detailed-exitcode")
    assert final.exit_code == 0, final.output
    assert "No changes." in final.stdout
    assert "DA1275B1" not in final.stdout  # the cross-region broker is gone with the plan


def test_without_dumps_validate_and_plan_hold_no_device_changes(aws_env, tmp_path: Path) -> None:
    """The quick start: validate needs no secret, and a plan without --dumps is the cloud plan alone."""
    ws = workspace(tmp_path)
    bare = {k: v for k, v in ws.env.items() if not k.startswith(("FLEETCTL_WIFI", "FLEETCTL_SPRINGPARK"))}
    valid = ws.cli("validate", str(ws.fleet))
    assert valid.exit_code == 0, valid.output
    from tests.conftest import run_cli

    res = run_cli("plan", str(ws.fleet), "--out", str(tmp_path / "p.json"), env=bare)
    assert res.exit_code == 0, res.output
    plan = json.loads((tmp_path / "p.json").read_text())
    assert plan["changes"] and not device_changes(plan)
    assert not [d for d in plan["diagnostics"] if (d.get("address") or "").startswith("device/")]


def _secret_fleet(ws: Workspace) -> None:
    """paris-readers with an MQTT login and password (a secret by reference) for every reader."""
    path = ws.fleet / "devices" / "paris-readers.yaml"
    text = path.read_text()
    anchor = '    mqtt_client_options: "5614030A1E1E"'
    assert anchor in text
    path.write_text(
        text.replace(anchor, anchor + "\n    mqtt_login: fleet\n    mqtt_password: {env: FLEETCTL_TEST_MQTT_PASSWORD}")
    )
    ws.env["FLEETCTL_TEST_MQTT_PASSWORD"] = MQTT_PASSWORD


def test_secrets_never_in_plans_journals_or_public_artifacts(aws_env, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    _secret_fleet(ws)
    secrets = [MQTT_PASSWORD, WIFI_PSK, ADMIN_PASSWORD]
    secrets += [s.encode().hex().upper() for s in secrets]  # SpringCore artifacts carry text as hex
    seen: list[str] = []
    for fmt in ("text", "json", "markdown"):
        res = ws.plan("--format", fmt, "--out", str(ws.root / "plan.json"))
        assert res.exit_code == 0, res.output
        seen += [res.stdout, res.stderr]
    plan = json.loads((ws.root / "plan.json").read_text())
    password = next(f for f in device_changes(plan)["DA1275B1"]["fields"] if f["path"] == "registers.mqtt_password")
    assert password == {
        "op": "change",
        "path": "registers.mqtt_password",
        "before": "(sensitive)",
        "after": "(sensitive)",
        "sensitive": True,
    }
    seen.append(ws.cli("show", str(ws.root / "plan.json")).stdout)
    drift = ws.cli("drift", str(ws.fleet), "--dumps", str(ws.dumps), "--format", "json")
    seen += [drift.stdout, drift.stderr]
    applied = ws.apply(ws.root / "plan.json")
    assert applied.exit_code == 0, applied.output
    seen += [
        applied.stdout,
        applied.stderr,
        (ws.root / "plan.json").read_text(),
        ws.journal.read_text(),
        ws.state.read_text(),
    ]
    for text in seen:
        for secret in secrets:
            assert secret not in text
    assert stat.S_IMODE(ws.state.stat().st_mode) == 0o600
    holders = set()
    for path in ws.artifacts.rglob("*"):
        if path.is_file():
            data = path.read_text()
            if any(s in data for s in secrets):
                holders.add(path.name)
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            else:
                assert stat.S_IMODE(path.stat().st_mode) in (0o644, 0o755), path
    assert holders == {
        "DA1275B0.json",
        "DA1275B1.json",
        "DA1275B2.json",
        "D4-CA-6E-0A-1B-2C.at",
        "00-80-E1-B7-3C-21.at",
        "24-0A-C4-5F-12-9C.csv",
    }
    config = json.loads((ws.artifacts / "springcard-springpark" / "DA1275B1.json").read_text())["config"]
    assert bytes.fromhex(config["8C"]).decode() == MQTT_PASSWORD


def test_changed_dump_refuses_the_saved_plan(aws_env, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    assert ws.plan("--out", str(ws.root / "plan.json")).exit_code == 0
    dump = ws.dumps / "DA1275B2.json"
    doc = json.loads(dump.read_text())
    doc["config"] = {"C0": "64", "89": "5314030A1E1E"}  # someone set the profile by hand meanwhile
    dump.write_text(json.dumps(doc))
    res = ws.apply(ws.root / "plan.json")
    assert res.exit_code == 1
    assert "plan is stale, re-run plan" in res.stderr
    assert "device/springcard-springpark/DA1275B2" in res.stderr
    assert not ws.artifacts.exists() and not ws.state.exists()
    assert boto3.client("iot", region_name="eu-west-2").list_things()["things"] == []  # nothing half-applied


def test_secret_changed_since_the_plan_fails_those_devices(aws_env, tmp_path: Path) -> None:
    """Apply carries out the reviewed plan: a PSK that differs from the planned one is refused, not written."""
    ws = workspace(tmp_path)
    assert ws.plan("--out", str(ws.root / "plan.json")).exit_code == 0
    ws.env["FLEETCTL_WIFI_PSK"] = "another passphrase"
    res = ws.apply(ws.root / "plan.json")
    assert res.exit_code == 1
    # the three devices share one error: it is said once, and every failed device is named under it
    head = next(line for line in res.stderr.splitlines() if "failed with the same error" in line)
    assert (
        head.startswith("error: 3 change(s) failed with the same error: ") and "changed since the plan was made" in head
    )
    for device in ("ublox-nina-w13/D4-CA-6E-0A-1B-2C", "st-spwf01/00-80-E1-B7-3C-21", "esp32-nvs/24-0A-C4-5F-12-9C"):
        assert f"error:   device/{device}\n" in res.stderr
    assert "another passphrase" not in res.output
    assert (ws.artifacts / "springcard-springpark" / "DA1275B0.json").exists()
    assert not (ws.artifacts / "ublox-nina-w13").exists()
    recorded = json.loads(ws.state.read_text())["devices"]
    assert sorted(recorded) == [f"device/springcard-springpark/DA1275B{i}" for i in range(3)]
