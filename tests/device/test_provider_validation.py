"""DeviceModel and DeviceConfig mistakes are diagnostics at their file:line, all at once, from `fleetctl
validate` (exit 1, no traceback): the library's value checks, references, secrets, models, device conflicts."""

from __future__ import annotations

import re
from pathlib import Path

from .provider_support import workspace

TARGET = """\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: aws-eu}
spec: {aws: {region: eu-west-2}}
"""

BAD = """\
apiVersion: device.fleetctl.io/v1
kind: DeviceConfig
metadata: {name: readers}
spec:
  model: springcard-springpark
  selector: {matchLabels: {site: paris}}
  values:
    profile: {network: mqtt, primary: smartreader}
    mqtt_broker: {awsIotEndpoint: aws-us}
    mqtt_tls: {tls: true, server_ca_slot: 16}
    ipv4: {address: 10.0.0.2}
    mqtt_brokr: x
  devices:
    DA1275B0:
      values:
        admin_password: hunter2
---
apiVersion: device.fleetctl.io/v1
kind: DeviceConfig
metadata: {name: readers-too}
spec:
  model: springcard-springpark
  devices:
    DA1275B0: {}
---
apiVersion: device.fleetctl.io/v1
kind: DeviceConfig
metadata: {name: modules}
spec:
  model: st-spwf01
  devices:
    "00:80:E1:B7:3C:21":
      values:
        f_ca: api.amazon.com
        f_cert: {certificatePem: nope}
        f_key: {file: keys/in-the-repo.pem}
---
apiVersion: device.fleetctl.io/v1
kind: DeviceConfig
metadata: {name: typo}
spec:
  model: springpark
  devices: {DB000001: {}}
---
apiVersion: device.fleetctl.io/v1
kind: DeviceConfig
metadata: {name: nothing}
spec:
  model: esp32-nvs
---
apiVersion: device.fleetctl.io/v1
kind: DeviceModel
metadata: {name: my-reader}
spec:
  adapter: springcore
  match: {firmware: "SpringCore/*"}
  identity: SerialNumber
  registers:
    - {name: profile, address: 0x02C0, type: bitfeld}
"""


def _line(text: str, needle: str) -> int:
    return text.splitlines().index(next(line for line in text.splitlines() if needle in line)) + 1


def test_every_mistake_at_its_file_and_line(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        example=False,
        files={"targets.yaml": TARGET, "devices.yaml": BAD, "keys/in-the-repo.pem": "-----BEGIN PRIVATE KEY-----\n"},
    )
    res = ws.cli("validate", str(ws.fleet))
    assert res.exit_code == 1
    out = res.stderr
    expected = [
        ("network: mqtt,", r"field network: unknown enum name 'mqtt' \(expected one of: disabled, .*mqtt_client\)"),
        ("awsIotEndpoint: aws-us", r"unresolved reference: no Target named 'aws-us' \(did you mean 'aws-eu'\?\)"),
        ("server_ca_slot: 16", r"field server_ca_slot: value 16 does not fit 4 bits \(0\.\.15\)"),
        ("ipv4: {address", r"register 'ipv4' is individual \(one value per device\)"),
        ("mqtt_brokr", r"unknown register 'mqtt_brokr' .*did you mean 'mqtt_broker'"),
        ("admin_password: hunter2", r"register 'admin_password' is sensitive"),
        ("f_ca: api.amazon.com", r"slot f_ca expects a PEM certificate.*that is a host name"),
        ("certificatePem: nope", r"unresolved reference: no Certificate or CACertificate named 'nope'"),
        ("in-the-repo.pem", r"lies inside the fleet repository"),
        ("model: springpark", r"unknown device model 'springpark' \(did you mean 'springcard-springpark'\?\)"),
        ("type: bitfeld", r"unknown value 'bitfeld'.*did you mean 'bitfield'"),
    ]
    for needle, message in expected:
        line = _line(BAD, needle)
        assert re.search(rf"fleet/devices\.yaml:{line}:\d+: error: .*{message}", out), (needle, out)
    conflict = _line(BAD, "DA1275B0: {}")
    assert re.search(
        rf"devices\.yaml:{conflict}:\d+: error: .*device DA1275B0 is also configured by DeviceConfig "
        "'readers'",
        out,
    ), out
    assert re.search(rf"devices\.yaml:{_line(BAD, 'model: esp32-nvs') - 1}:1: error: .*needs a selector", out), out
    assert "Traceback" not in res.output
