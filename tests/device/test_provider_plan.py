"""Device plans beyond the happy path, without a cloud (literal broker names, or an optional Azure Target that is
skipped): a missing secret is a plan error at its line, devices without a dump are reported, a fleet-declared
model, the recorded fingerprints guarding a saved plan, an Azure hub host reference, and the cross-checks lint
calls (`device_findings`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from engine.manifest.fleet import load_fleet
from engine.providers.device import FindingCode
from engine.providers.device.fleetcheck import device_findings

from .provider_support import device_changes, workspace

TARGET = """\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: aws-eu}
spec: {aws: {region: eu-west-2}}
"""


def _line(text: str, needle: str) -> int:
    return text.splitlines().index(next(line for line in text.splitlines() if needle in line)) + 1


SPRINGPARK = """\
apiVersion: device.fleetctl.io/v1
kind: DeviceConfig
metadata: {name: readers}
spec:
  model: springcard-springpark
  values:
    mqtt_broker: a1b2c3d4e5f6g7-ats.iot.eu-west-2.amazonaws.com
    mqtt_password: {env: FLEETCTL_TEST_MQTT_PASSWORD}
  devices:
    DA1275B0: {}
    DA1275B1: {}
    DA12FFFF: {}
"""


def test_a_missing_secret_fails_the_plan_not_validate(tmp_path: Path) -> None:
    ws = workspace(tmp_path, example=False, files={"readers.yaml": SPRINGPARK})
    assert ws.cli("validate", str(ws.fleet)).exit_code == 0
    res = ws.plan()
    assert res.exit_code == 1
    line = _line(SPRINGPARK, "mqtt_password")
    assert (
        f"fleet/readers.yaml:{line}:5: error: device/springcard-springpark/DA1275B0: field "
        "'values.mqtt_password': secret environment variable FLEETCTL_TEST_MQTT_PASSWORD is not set" in res.output
    )


def test_devices_without_a_dump_are_reported_not_planned(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path, example=False, files={"readers.yaml": SPRINGPARK}, env={"FLEETCTL_TEST_MQTT_PASSWORD": "pw"}
    )
    plan = ws.plan_json()
    assert sorted(device_changes(plan)) == ["DA1275B0", "DA1275B1"]
    warning = next(d for d in plan["diagnostics"] if "no dump" in d["summary"])
    assert warning["severity"] == "warning" and "DA12FFFF" in warning["summary"]
    assert warning["address"] == "device/DeviceConfig/readers"


MODEL = """\
apiVersion: device.fleetctl.io/v1
kind: DeviceModel
metadata: {name: esp32-fleet}
spec:
  adapter: esp-nvs
  match: {firmware: "aws_iot *"}
  identity: mac
  partition: {name: nvs_cfg, size: 0x6000}
  registers:
    - {name: thing_name, address: aws/thing, type: string, size: 128, default: ""}
    - {name: endpoint, address: aws/endpoint, type: string, size: 128, default: ""}
    - {name: mqtt_port, address: aws/port, type: u16, default: 8883}
    - {name: wifi_ssid, address: wifi/ssid, type: string, size: 32, default: ""}
    - {name: telemetry_s, address: app/period, type: u16, default: 60}
---
apiVersion: device.fleetctl.io/v1
kind: DeviceConfig
metadata: {name: sensors}
spec:
  model: esp32-fleet
  values: {telemetry_s: 30, endpoint: a1b2c3d4e5f6g7-ats.iot.eu-west-2.amazonaws.com}
  devices:
    240AC45F129C: {values: {thing_name: 240AC45F129C}}
"""


def test_a_declared_model_plans_applies_and_guards_its_plan(tmp_path: Path) -> None:
    ws = workspace(tmp_path, example=False, files={"sensors.yaml": MODEL})
    plan = ws.plan_json()
    change = device_changes(plan)["24-0A-C4-5F-12-9C"]
    assert change["address"] == "device/esp32-fleet/24-0A-C4-5F-12-9C"
    assert [f["path"] for f in change["fields"]] == [
        "registers.telemetry_s",
        "registers.endpoint",  # by address:
        "registers.thing_name",
    ]  # app/ < aws/
    ws.plan("--out", str(ws.root / "saved.json"))
    model = ws.fleet / "sensors.yaml"
    model.write_text(model.read_text().replace("default: 60", "default: 90"))
    res = ws.apply(ws.root / "saved.json")
    assert res.exit_code == 1 and "plan is stale" in res.stderr and "device/esp32-fleet/24-0A-C4-5F-12-9C" in res.stderr
    assert not ws.artifacts.exists()
    model.write_text(MODEL)
    assert ws.apply(ws.root / "saved.json").exit_code == 0
    csv = (ws.artifacts / "esp32-fleet" / "24-0A-C4-5F-12-9C.csv").read_text()
    assert "app,namespace,,\nperiod,data,u16,30\n" in csv and "ssid,data,string,factory-test" in csv


FINDINGS = (
    TARGET
    + """\
---
apiVersion: device.fleetctl.io/v1
kind: DeviceConfig
metadata: {name: west}
spec:
  model: springcard-springpark
  values:
    mqtt_broker: abcdefghijklmn-ats.iot.us-west-2.amazonaws.com
    mqtt_tls: {tls: true}
    network_ports: {mqtt: 1883}
  devices:
    DB000001: {}
---
apiVersion: device.fleetctl.io/v1
kind: DeviceConfig
metadata: {name: nina}
spec:
  model: ublox-nina-w13
  values:
    mqtt.peer: {host: {awsIotEndpoint: aws-eu}, port: 8883, query: {ca: AmazonRootCA1.pem}}
  devices:
    D4-CA-6E-0A-1B-2C: {}
"""
)


def test_device_findings_for_lint(tmp_path: Path) -> None:
    ws = workspace(tmp_path, example=False, files={"fleet.yaml": FINDINGS})
    fleet = load_fleet(ws.fleet, env={})
    assert not fleet.diagnostics.has_errors, [d.render() for d in fleet.diagnostics]
    findings = device_findings(fleet)
    by_code = {(f.code, f.address) for f in findings}
    assert {
        (FindingCode.CROSS_REGION, "device/DeviceConfig/west"),  # the fleet's only AWS Target
        (FindingCode.TLS_PORT, "device/DeviceConfig/west"),
        (FindingCode.CA_UNVERIFIED, "device/DeviceConfig/nina"),
    } <= by_code  # no dump says what it holds
    assert not any(f.code is FindingCode.BROKER_NOT_ENDPOINT for f in findings)  # no endpoint known: not compared
    known = device_findings(fleet, endpoints={"aws-eu": "zyxwvutsrqponm-ats.iot.eu-west-2.amazonaws.com"})
    assert {(f.code, f.address) for f in known if f.code is FindingCode.BROKER_NOT_ENDPOINT} == {
        (FindingCode.BROKER_NOT_ENDPOINT, "device/DeviceConfig/west")
    }  # {awsIotEndpoint} is, by design
    cross = next(f for f in findings if f.code is FindingCode.CROSS_REGION)
    assert cross.source == f"fleet/fleet.yaml:{_line(FINDINGS, 'name: west')}:12"
    assert "us-west-2" in cross.message and "eu-west-2" in cross.message
    with_dumps = device_findings(load_fleet(ws.fleet, env={"FLEETCTL_DUMPS": str(ws.dumps)}))
    # the NINA's dump holds AmazonRootCA1.pem: the CA slot its peer names holds Amazon Root CA 1
    assert all(f.address != "device/ublox-nina-w13/D4-CA-6E-0A-1B-2C" for f in with_dumps)
    assert (FindingCode.CROSS_REGION, "device/springcard-springpark/DB000001") in {
        (f.code, f.address) for f in with_dumps
    }


def test_recorded_fingerprints_guard_a_saved_plan(tmp_path: Path) -> None:
    """What a device cannot report is compared with what apply recorded (R7); a saved plan made against one
    record is refused once the record changed, and a tampered record shows as a mismatch."""
    ws = workspace(
        tmp_path, example=False, files={"readers.yaml": SPRINGPARK}, env={"FLEETCTL_TEST_MQTT_PASSWORD": "pw-1"}
    )
    first = ws.plan_json()
    assert "registers.mqtt_password" in [f["path"] for f in device_changes(first)["DA1275B0"]["fields"]]
    assert ws.apply(ws.root / "plan.json").exit_code == 0
    ws.plan("--out", str(ws.root / "saved.json"))
    saved = json.loads((ws.root / "saved.json").read_text())
    assert "registers.mqtt_password" not in [f["path"] for f in device_changes(saved)["DA1275B0"]["fields"]]
    state = json.loads(ws.state.read_text())
    state["devices"]["device/springcard-springpark/DA1275B0"]["mqtt_password"] = "sha256:" + "0" * 64
    ws.state.write_text(json.dumps(state))
    res = ws.apply(ws.root / "saved.json")
    assert res.exit_code == 1 and "plan is stale" in res.stderr
    assert "device/springcard-springpark/DA1275B0" in res.stderr and "DA1275B1" not in res.stderr
    again = device_changes(ws.plan_json())["DA1275B0"]
    assert "update mqtt_password @028C: unreadable; fingerprint mismatch" in again["steps"]


AZURE = """\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: azure-prod}
spec:
  azure:
    hub: {hostName: fleetctl-sandbox-hub.azure-devices.net, connectionString: {env: FLEETCTL_TEST_HUB_CONNECTION}}
  optional: true
---
apiVersion: device.fleetctl.io/v1
kind: DeviceConfig
metadata: {name: nina-azure}
spec:
  model: ublox-nina-w13
  devices:
    D4-CA-6E-0A-1B-2C:
      values:
        mqtt.peer:
          host: {azureHubHost: azure-prod}
          port: 8883
          query: {client: nina, user: "fleetctl-sandbox-hub.azure-devices.net/nina/?api-version=2021-04-12",
                  encr: 3, ca: AmazonRootCA1.pem}
"""


def test_an_azure_hub_host_reference(tmp_path: Path) -> None:
    """The u-blox note's Azure setup: the peer's host is the Azure Target's hub (the Target itself is optional
    and, without its connection string, not read)."""
    ws = workspace(tmp_path, example=False, files={"azure.yaml": AZURE})
    plan = ws.plan_json()
    peer = next(f for f in device_changes(plan)["D4-CA-6E-0A-1B-2C"]["fields"] if f["path"] == "registers.mqtt.peer")
    assert peer["after"].startswith("mqtt://fleetctl-sandbox-hub.azure-devices.net:8883/?")
    device = [d for d in plan["diagnostics"] if d.get("address", "").startswith("device/")]
    assert not [d for d in device if re.search("broker|region", d["summary"])], device


def test_reading_the_dumps_reports_progress(tmp_path: Path) -> None:
    """Each device's dump read is reported (off a terminal: lines on stderr; here at every 5 %), stdout is the plan."""
    ws = workspace(
        tmp_path,
        example=False,
        files={"readers.yaml": SPRINGPARK},
        env={"FLEETCTL_TEST_MQTT_PASSWORD": "pw", "FLEETCTL_PROGRESS_SECONDS": "0"},
    )
    res = ws.plan("--format", "json")
    reads = [line for line in res.stderr.splitlines() if line.startswith("read device dumps: ")]
    assert reads[-1].startswith("read device dumps: 3/3 devices (100%)") and "done in" in reads[-1], res.stderr
    assert json.loads(res.stdout)["changes"]
