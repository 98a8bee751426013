"""ThingSet: devices from a CSV or a range and a template; errors name the CSV row and the template line."""

from __future__ import annotations

import pytest

from engine.diagnostics import Severity
from engine.manifest.fleet import load_fleet
from engine.model import Address
from engine.sandbox import certs
from tests.conftest import run_cli
from tests.scale.conftest import esp32_macs

THINGS = """\
apiVersion: fleetctl.io/v1
kind: ThingSet
metadata: {name: esp32-fleet}
spec:
  csv: {file: devices.csv, id: mac}
  template:
    - apiVersion: aws.fleetctl.io/v1
      kind: Thing
      metadata: {name: "esp32-${mac|compact}", target: aws-eu, labels: {site: "${site}"}}
      spec:
        thingType: esp32
        attributes: {mac: "${mac|lower}", site: "${site}", row: "${index}", note: "$${literal}"}
        groups: [esp32-fleet]
"""

CERTS = """\
apiVersion: fleetctl.io/v1
kind: ThingSet
metadata: {name: esp32-fleet}
spec:
  csv: {file: devices.csv, id: mac}
  template:
    - apiVersion: aws.fleetctl.io/v1
      kind: Certificate
      metadata: {name: "esp32-${mac|compact}", target: aws-eu}
      spec: {certificatePem: {file: "certs/${mac|compact}.pem"}}
"""


def _errors(fleet) -> list[str]:
    return [d.render() for d in fleet.diagnostics.sorted() if d.severity is Severity.ERROR]


def test_csv_rows_expand_into_validated_desired_things(write):
    root = write(THINGS, ["mac,site", *[f"{m},paris" for m in esp32_macs(3)]])
    fleet = load_fleet(root, {})
    assert _errors(fleet) == []
    things = sorted((d for d in fleet.desired if d.kind == "aws.Thing"), key=lambda d: d.address)
    assert [str(d.address) for d in things] == [
        "aws/aws-eu/Thing/esp32-240AC4000000",
        "aws/aws-eu/Thing/esp32-240AC4000001",
        "aws/aws-eu/Thing/esp32-240AC4000002",
    ]
    assert things[1].spec["attributes"] == {
        "mac": "24:0a:c4:00:00:01",
        "site": "paris",
        "row": "1",
        "note": "${literal}",
    }
    # every generated resource went through the reference stage: the group and type are dependency edges
    assert things[0].depends_on == (
        Address.of("aws", "aws-eu", "ThingGroup", "esp32-fleet"),
        Address.of("aws", "aws-eu", "ThingType", "esp32"),
    )
    # the generated resource points at its CSV row and the template line
    assert str(things[1].source) == "fleet/devices.csv:3, template fleet/devices.yaml:9:18"
    # AWS policy variables are not ThingSet variables
    policy = next(d for d in fleet.desired if d.kind == "aws.Policy")
    assert "${iot:Connection.Thing.ThingName}" in policy.spec["document"]["Statement"][0]["Resource"]


def test_range_with_zero_padding(write):
    root = write("""\
        apiVersion: fleetctl.io/v1
        kind: ThingSet
        metadata: {name: sensors}
        spec:
          range: {start: 7, count: 4, width: 5}
          template:
            - apiVersion: aws.fleetctl.io/v1
              kind: Thing
              metadata: {name: "sensor-${id}", target: aws-eu}
              spec: {thingType: esp32, attributes: {n: "${index}"}}
        """)
    fleet = load_fleet(root, {})
    assert _errors(fleet) == []
    names = sorted(d.address.name for d in fleet.desired if d.kind == "aws.Thing")
    assert names == ["sensor-00007", "sensor-00008", "sensor-00009", "sensor-00010"]


def test_per_device_certificate_from_a_pem_path_pattern(write):
    macs = esp32_macs(2)
    ca = certs.make_ca("ESP32 fleet CA")
    pems = {}
    root = write(
        CERTS
        + """\
    - apiVersion: aws.fleetctl.io/v1
      kind: Thing
      metadata: {name: "esp32-${mac|compact}", target: aws-eu}
      spec: {thingType: esp32, groups: [esp32-fleet], principals: ["esp32-${mac|compact}"]}
""",
        ["mac", *macs],
    )
    (root / "certs").mkdir()
    for mac in macs:
        compact = mac.replace(":", "")
        pems[compact] = certs.issue(compact, ca).pem
        (root / "certs" / f"{compact}.pem").write_text(pems[compact])
    fleet = load_fleet(root, {})
    assert _errors(fleet) == []
    cert = next(d for d in fleet.desired if str(d.address) == "aws/aws-eu/Certificate/esp32-240AC4000001")
    assert cert.inputs["certificatePem"] == pems["240AC4000001"]
    thing = next(d for d in fleet.desired if str(d.address) == "aws/aws-eu/Thing/esp32-240AC4000001")
    assert cert.address in thing.depends_on and thing.spec["principals"] == ["esp32-240AC4000001"]
    # a missing PEM names the row that asked for it (the certificate's and the thing's expand both read it)
    (root / "certs" / "240AC4000000.pem").unlink()
    errors = _errors(load_fleet(root, {}))
    assert len(errors) == 2, errors
    assert all(
        e.startswith("fleet/devices.csv:2, template fleet/devices.yaml:")
        and "file not found: 'certs/240AC4000000.pem'" in e
        for e in errors
    )


def test_csv_errors_name_the_row(write):
    rows = [
        "mac,site",
        "24:0A:C4:00:00:01,paris",
        "24:0A:C4:00:00:02",
        "24:0A:C4:00:00:01,lyon",
        ",nice",
        "24:0A:C4:00:00 03,paris",
    ]
    errors = _errors(load_fleet(write(THINGS, rows), {}))
    assert errors[0] == "fleet/devices.csv:3:1: error: row has 1 value(s), the header has 2\n    header: mac, site"
    assert (
        "fleet/devices.csv:4:1: error: duplicate id '24:0A:C4:00:00:01' (column 'mac')\n    first at fleet/devices.csv:2"
        in errors
    )
    assert "fleet/devices.csv:5:1: error: empty id (column 'mac')" in errors
    # a value that makes an invalid resource: the CSV row, and the template line of the field it went into
    bad = [e for e in errors if e.startswith("fleet/devices.csv:6, template fleet/devices.yaml:9:18: error: ")]
    assert len(bad) == 1 and "field 'metadata.name'" in bad[0] and "esp32-240AC40000 03" in bad[0]


def test_unknown_variable_and_filter_point_at_the_template(write):
    bad = THINGS.replace('row: "${index}"', 'row: "${rowid}"').replace("${mac|lower}", "${mac|reverse}")
    result = run_cli("validate", str(write(bad, ["mac,site", "24:0A:C4:00:00:01,paris"])))
    assert result.exit_code == 1
    assert "fleet/devices.yaml:12:62: error: unknown variable ${rowid}" in result.stderr
    assert "variables: ${id}, ${index}, ${mac}, ${site}" in result.stderr
    assert "fleet/devices.yaml:12:22: error: unknown filter 'reverse' in ${mac|reverse}" in result.stderr


def test_one_template_mistake_is_one_error_not_one_per_row(write):
    root = write(THINGS.replace("attributes:", "atributes:"), ["mac,site", *[f"{m},paris" for m in esp32_macs(500)]])
    result = run_cli("validate", str(root))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if ": error:" in line]
    assert lines == [
        "fleet/devices.yaml:12:9: error: field 'spec.atributes': unknown field 'atributes' (did you mean 'attributes'?)"
    ]
    assert (
        "on 500 generated documents (rows fleet/devices.csv:2, fleet/devices.csv:3, fleet/devices.csv:4, …)"
        in result.stderr
    )


def test_the_same_row_error_on_many_rows_folds_and_distinct_ones_are_capped(write):
    bad_macs = ["mac,site", *[f"{m} x,paris" for m in esp32_macs(80)]]  # every name breaks the same rule
    errors = _errors(load_fleet(write(THINGS, bad_macs), {}))
    assert len(errors) == 1 and "on 80 generated documents" in errors[0] and "field 'metadata.name'" in errors[0]
    root = write(CERTS, ["mac", *esp32_macs(80)])
    errors = _errors(load_fleet(root, {}))  # 80 different files missing: 50 shown, then a count
    assert len(errors) == 51
    assert (
        "fleet/devices.yaml:10:1: error: … and 30 more error(s) in documents generated from the template at "
        "fleet/devices.yaml:10" in errors
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        ("template: [{kind: Thing}]", "a ThingSet has exactly one of: csv, range"),
        ("csv: {file: devices.csv}\n  range: {count: 2}\n  template: [{kind: Thing}]", "exactly one of: csv, range"),
        ("range: {count: 2}\n  template: []", "at least 1 item"),
    ],
)
def test_thingset_spec_is_validated(write, spec, message):
    root = write(f"apiVersion: fleetctl.io/v1\nkind: ThingSet\nmetadata: {{name: s}}\nspec:\n  {spec}\n", ["mac", "x"])
    assert any(message in e for e in _errors(load_fleet(root, {}))), _errors(load_fleet(root, {}))


def test_missing_csv_and_nested_thingset(write):
    root = write(THINGS.replace("file: devices.csv", "file: nowhere.csv"))
    assert any(
        e.startswith("fleet/devices.yaml:5:9: error: field 'spec.csv.file': CSV file not found: 'nowhere.csv'")
        for e in _errors(load_fleet(root, {}))
    ), _errors(load_fleet(root, {}))
    root = write("""\
        apiVersion: fleetctl.io/v1
        kind: ThingSet
        metadata: {name: outer}
        spec:
          range: {count: 2}
          template:
            - {apiVersion: fleetctl.io/v1, kind: ThingSet, metadata: {name: "inner-${id}"}, spec: {range: {count: 1}}}
        """)
    assert any(
        "fleet/devices.yaml:7:36: error: field 'spec.template.0.kind': a ThingSet template cannot contain a "
        "ThingSet" in e
        for e in _errors(load_fleet(root, {}))
    ), _errors(load_fleet(root, {}))


def test_template_documents_of_azure_kinds(write, tmp_path):
    """The template hook is kind-agnostic: Azure device identities (and their twins) come from the same rows."""
    root = write(
        """\
        apiVersion: fleetctl.io/v1
        kind: ThingSet
        metadata: {name: hub-devices}
        spec:
          csv: {file: devices.csv, id: mac}
          template:
            - apiVersion: azure.fleetctl.io/v1
              kind: Device
              metadata: {name: "esp32-${mac|compact}", target: azure-prod}
              spec: {authentication: {type: x509CA}, tags: {site: "${site}"}, desired: {interval: 30}}
        """,
        ["mac,site", *[f"{m},paris" for m in esp32_macs(2)]],
        shared=False,
    )
    (root / "azure.yaml").write_text("""\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: azure-prod}
spec:
  azure:
    hub: {hostName: hub.azure-devices.net, connectionString: {env: HUB_CS}}
""")
    fleet = load_fleet(root, {"HUB_CS": "HostName=hub.azure-devices.net;SharedAccessKeyName=k;SharedAccessKey=a2V5"})
    assert _errors(fleet) == []
    devices = sorted(str(d.address) for d in fleet.desired if d.kind == "azure.Device")
    assert devices == ["azure/azure-prod/Device/esp32-240AC4000000", "azure/azure-prod/Device/esp32-240AC4000001"]


def test_device_config_counterpart(write):
    """…and so do the on-device configurations: one DeviceConfig per row, values from the row."""
    root = write(
        """\
        apiVersion: fleetctl.io/v1
        kind: ThingSet
        metadata: {name: esp32-config}
        spec:
          csv: {file: devices.csv, id: mac}
          template:
            - apiVersion: device.fleetctl.io/v1
              kind: DeviceConfig
              metadata: {name: "esp32-${mac|compact}", labels: {site: "${site}"}}
              spec: {model: esp32-nvs, devices: {"${mac}": {labels: {site: "${site}"}}}}
        """,
        ["mac,site", *[f"{m},paris" for m in esp32_macs(2)]],
        shared=False,
    )
    fleet = load_fleet(root, {})
    configs = sorted((m for m in fleet.manifests if m.decl.qualified == "device.DeviceConfig"), key=lambda m: m.name)
    assert [m.name for m in configs] == ["esp32-240AC4000000", "esp32-240AC4000001"]
    assert list(configs[1].spec.devices) == ["24:0A:C4:00:00:01"]
    assert str(configs[1].source()) == "fleet/devices.csv:3, template fleet/devices.yaml:9:18"
