"""Helpers for the fleet-scale tests: small fleets written into tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

TARGET = """\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: aws-eu}
spec:
  aws: {region: eu-west-2}
"""

SHARED = """\
apiVersion: aws.fleetctl.io/v1
kind: ThingType
metadata: {name: esp32, target: aws-eu}
spec: {description: ESP32 devkits}
---
apiVersion: aws.fleetctl.io/v1
kind: Policy
metadata: {name: esp32-policy, target: aws-eu}
spec:
  document:
    Version: "2012-10-17"
    Statement:
      - {Effect: Allow, Action: "iot:Connect", Resource: "arn:aws:iot:eu-west-2:123456789012:client/${iot:Connection.Thing.ThingName}"}
---
apiVersion: aws.fleetctl.io/v1
kind: ThingGroup
metadata: {name: esp32-fleet, target: aws-eu}
spec: {policies: [esp32-policy]}
"""

# Things from a CSV of ESP32 MACs, in one group whose policy covers them all (no per-device certificate)
THINGSET = """\
apiVersion: fleetctl.io/v1
kind: ThingSet
metadata: {name: esp32-fleet}
spec:
  csv: {file: devices.csv, id: mac}
  template:
    - apiVersion: aws.fleetctl.io/v1
      kind: Thing
      metadata: {name: "esp32-${mac|compact}", target: aws-eu}
      spec: {thingType: esp32, attributes: {site: "${site}"}, groups: [esp32-fleet]}
"""


def esp32_macs(n: int) -> list[str]:
    """ESP32 station MACs (Espressif OUI 24:0A:C4), as the seed's registerDevice.py reads them."""
    return [f"24:0A:C4:{i >> 16 & 255:02X}:{i >> 8 & 255:02X}:{i & 255:02X}" for i in range(n)]


def write_fleet(root: Path, thingset: str, csv_rows: list[str] | None = None, *, shared: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "targets.yaml").write_text(TARGET)
    if shared:
        (root / "shared.yaml").write_text(SHARED)
    (root / "devices.yaml").write_text(textwrap.dedent(thingset))
    if csv_rows is not None:
        (root / "devices.csv").write_text("\n".join(csv_rows) + "\n")
    return root


@pytest.fixture
def write(tmp_path):
    def make(thingset: str, csv_rows: list[str] | None = None, **kw) -> Path:
        return write_fleet(tmp_path / "fleet", thingset, csv_rows, **kw)

    return make
