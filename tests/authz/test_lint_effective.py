"""Lint on effective permissions (FL011–FL020) over fleets written here: the seeds' policies, findings proven by
concrete requests with the policy statement's file:line, SARIF results, opt-in rules."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from engine.lint import lint
from engine.sandbox.certs import issue, make_ca
from tests.conftest import run_cli
from tests.device.provider_support import workspace
from tests.device.test_provider_plan import FINDINGS

ENV = {"FLEETCTL_NOW": "2026-11-21T10:00:00Z"}
TARGET = """\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: aws-eu}
spec:
  aws: {region: eu-west-2, accountId: "123456789012"}
"""
TN = "${iot:Connection.Thing.ThingName}"
A = "arn:aws:iot:eu-west-2:123456789012:"


def things(n: int, group: str = "devices") -> str:
    return "".join(
        textwrap.dedent(f"""\
        ---
        apiVersion: aws.fleetctl.io/v1
        kind: Thing
        metadata: {{name: esp32-{i}, target: aws-eu}}
        spec: {{groups: [{group}]}}
        """)
        for i in "ABC"[:n]
    )


def policy(name: str, statements: str) -> str:
    return (
        f"---\napiVersion: aws.fleetctl.io/v1\nkind: Policy\nmetadata: {{name: {name}, target: aws-eu}}\n"
        f'spec:\n  document:\n    Version: "2012-10-17"\n    Statement:\n'
        + textwrap.indent(textwrap.dedent(statements), "      ")
    )


def group(policies: str) -> str:
    return (
        f"---\napiVersion: aws.fleetctl.io/v1\nkind: ThingGroup\nmetadata: {{name: devices, target: aws-eu}}\n"
        f"spec: {{policies: [{policies}]}}\n"
    )


def write(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "fleet.yaml").write_text(TARGET + text)
    return root


def line_of(root: Path, needle: str) -> int:
    return next(i for i, text in enumerate((root / "fleet.yaml").read_text().splitlines(), 1) if needle in text)


# The u-blox note's demo policy (seed 002 §2.1 step 3): "publish to all topics and subscribe to all topic filters".
DEMO = """\
- Effect: Allow
  Action: "iot:*"
  Resource: "*"
"""
# The note's production example, with the Target's region: each device its own client id and topics.
PRODUCTION = f"""\
- Effect: Allow
  Action: iot:Connect
  Resource: "{A}client/{TN}"
- Effect: Allow
  Action: iot:Subscribe
  Resource: ["{A}topicfilter/$aws/things/{TN}/shadow/*", "{A}topicfilter/{TN}/*"]
- Effect: Allow
  Action: iot:Receive
  Resource: ["{A}topic/$aws/things/{TN}/shadow/*", "{A}topic/{TN}/*"]
- Effect: Allow
  Action: iot:Publish
  Resource: ["{A}topic/$aws/things/{TN}/shadow/*", "{A}topic/{TN}/*"]
"""
# The SpringPark how-to's demo access (seed 000): "only allows you to subscribe to topic springcard/springcore/+/rdr/evt".
SPRINGPARK = f"""\
- Effect: Allow
  Action: iot:Connect
  Resource: "{A}client/{TN}"
- Effect: Allow
  Action: iot:Subscribe
  Resource: "{A}topicfilter/springcard/springcore/+/rdr/evt"
- Effect: Allow
  Action: iot:Receive
  Resource: "{A}topic/springcard/springcore/*/rdr/evt"
"""


def findings(root: Path, *rules: str):
    from engine.lint import LintConfig

    result = lint(root, LintConfig(select=rules) if rules else None, env=ENV)
    return [f for f in result.findings if not rules or f.rule in rules]


def test_demo_allow_all_is_cross_device_with_a_concrete_request(tmp_path):
    root = write(tmp_path / "fleet", policy("demo", DEMO) + group("demo") + things(3))
    found = findings(root, "FL011")
    assert found, "the allow-all policy lets a device act as another"
    f = found[0]
    assert f.source.file.endswith("fleet.yaml") and f.source.line == line_of(root, "Effect: Allow")
    # a group policy takes effect only when the client id is the thing name, so connecting *as* esp32-B is not
    # what it proves: publishing to esp32-B's reserved shadow topic is
    assert (
        "esp32-A (and 2 other thing(s) with the same permissions) can publish to "
        "$aws/things/esp32-B/shadow/update, which is esp32-B's" in f.message
    )
    assert "policy 'demo' statement 0" in f.message and f.address == "aws/aws-eu/Policy/demo"


def test_production_scoped_policy_is_not_cross_device(tmp_path):
    root = write(tmp_path / "fleet", policy("scoped", PRODUCTION) + group("scoped") + things(3))
    assert findings(root, "FL011", "FL012") == []


def test_client_id_suffix_is_cross_device(tmp_path):
    loose = f"""\
    - Effect: Allow
      Action: iot:Connect
      Resource: "{A}client/{TN}"
    - Effect: Allow
      Action: [iot:Publish, iot:Receive]
      Resource: ["{A}topic/dt/{TN}/telemetry", "{A}topic/dt/*/${{iot:ClientId}}"]
    """
    root = write(tmp_path / "fleet", policy("loose", loose) + group("loose") + things(2))
    messages = [f.message for f in findings(root, "FL011")]
    assert not any("dt/esp32-B/telemetry" in m for m in messages)  # scoped entry: not cross-device
    root = write(
        tmp_path / "fleet2",
        policy("loose", loose.replace("dt/*/${iot:ClientId}", "dt/*/telemetry")) + group("loose") + things(2),
    )
    messages = [f.message for f in findings(root, "FL011")]
    assert any("can publish to dt/esp32-B/telemetry, which is esp32-B's" in m for m in messages), messages


def test_springpark_demo_filter_holds_an_mqtt_wildcard(tmp_path):
    root = write(tmp_path / "fleet", policy("springpark-demo", SPRINGPARK) + group("springpark-demo") + things(2))
    found = findings(root, "FL012")
    assert len(found) == 1 and "springcard/springcore/+/rdr/evt" in found[0].message
    assert "every topic it matches" in found[0].message
    # and authz proves the consequence: the literal filter is allowed, a concrete one is not
    res = run_cli(
        "authz",
        "check",
        "esp32-A",
        "--fleet",
        str(root),
        "--action",
        "iot:Subscribe",
        "--topic",
        "springcard/springcore/+/rdr/evt",
    )
    assert res.exit_code == 0 and "ALLOW" in res.stdout
    res = run_cli(
        "authz",
        "check",
        "esp32-A",
        "--fleet",
        str(root),
        "--action",
        "iot:Subscribe",
        "--topic",
        "springcard/springcore/DA1275B0/rdr/evt",
    )
    assert res.exit_code == 2 and "IMPLICIT-DENY" in res.stdout


def test_deny_defeated_by_mqtt_wildcards(tmp_path):
    """Device Defender's example: a Deny meant to keep devices off building/control_room."""
    statements = f"""\
    - Effect: Allow
      Action: iot:Connect
      Resource: "{A}client/{TN}"
    - Effect: Allow
      Action: [iot:Subscribe]
      Resource: "{A}topicfilter/building/*"
    - Effect: Allow
      Action: [iot:Receive]
      Resource: "{A}topic/building/*"
    - Sid: NoControlRoom
      Effect: Deny
      Action: iot:Subscribe
      Resource: "{A}topicfilter/building/control_room"
    - Sid: NoControlRoomHash
      Effect: Deny
      Action: iot:Subscribe
      Resource: "{A}topicfilter/building/control_room/#"
    """
    root = write(tmp_path / "fleet", policy("bldg", statements) + group("bldg") + things(1))
    messages = [f.message for f in findings(root, "FL012")]
    assert any("statement NoControlRoomHash: Deny on 'topicfilter/building/control_room/#'" in m for m in messages)
    defeated = [m for m in messages if "TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS" in m]
    assert (
        defeated and "may subscribe to 'building/#'" in defeated[0] and "receive 'building/control_room'" in defeated[0]
    )


def _rsa_cert(bits: int, cn: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _cert_doc(name: str, pem_file: str, *, status="ACTIVE", ca=None, policies="[]") -> str:
    ca_line = f"  caCertificate: {ca}\n" if ca else ""
    return (
        f"---\napiVersion: aws.fleetctl.io/v1\nkind: Certificate\nmetadata: {{name: {name}, target: aws-eu}}\n"
        f"spec:\n  certificatePem: {{file: {pem_file}}}\n  status: {status}\n{ca_line}  policies: {policies}\n"
    )


def test_certificate_rules(tmp_path):
    root = tmp_path / "fleet"
    (root / "certs").mkdir(parents=True)
    (root / "certs" / "weak.pem").write_text(_rsa_cert(1024, "weak-device"))
    ca = make_ca()
    (root / "certs" / "ca.pem").write_text(ca.pem)
    (root / "certs" / "dev1.pem").write_text(issue("dev1", ca).pem)
    (root / "certs" / "dev2.pem").write_text(issue("dev2", ca).pem)
    text = (
        policy("p", DEMO)
        + _cert_doc("weak", "certs/weak.pem")
        + "---\napiVersion: aws.fleetctl.io/v1\nkind: CACertificate\nmetadata: {name: old-ca, target: aws-eu}\n"
        "spec:\n  certificatePem: {file: certs/ca.pem}\n  status: INACTIVE\n"
        + _cert_doc("dev1", "certs/dev1.pem", ca="old-ca")
        + _cert_doc("dev2", "certs/dev2.pem", ca="old-ca", status="REVOKED", policies="[p]")
        + "---\napiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {name: dev2, target: aws-eu}\n"
        "spec: {principals: [dev2]}\n"
    )
    write(root, text)
    by_rule = {}
    for f in findings(root, "FL013", "FL014", "FL015", "FL016"):
        by_rule.setdefault(f.rule, []).append(f.message)
    assert by_rule["FL013"] == ["certificate CN=weak-device has an RSA key of 1024 bits (at least 2048)"]
    assert any(
        "'old-ca' is INACTIVE, but 1 device certificate(s) it issued are ACTIVE: dev1" in m for m in by_rule["FL015"]
    )
    assert by_rule["FL016"] == [
        "certificate 'dev2' is REVOKED but still attached to 1 thing(s): dev2 and carries policies p"
    ]
    assert not [f for f in findings(root) if f.rule == "FL014"]  # FL014 is opt-in
    aged = lint(
        root,
        __import__("engine.lint", fromlist=["LintConfig"]).LintConfig(
            select=("FL014",), options={"FL014": {"days": 1}}
        ),
        env=ENV,
    )
    assert aged.findings and all(f.rule == "FL014" for f in aged.findings)


def test_azure_rules(tmp_path):
    root = tmp_path / "fleet"
    (root / "certs").mkdir(parents=True)
    ca = make_ca({"CN": "rootca"})
    (root / "certs" / "rootca.pem").write_text(ca.pem)
    (root / "certs" / "d1.pem").write_text(issue("d1", ca).pem)
    text = textwrap.dedent("""\
        apiVersion: fleetctl.io/v1
        kind: Target
        metadata: {name: azure-prod}
        spec:
          azure:
            hub: {hostName: hub.azure-devices.net, connectionString: {env: HUB_CS}}
            dps: {hostName: dps.azure-devices-provisioning.net, idScope: 0ne0067E45C, connectionString: {env: DPS_CS}}
        ---
        apiVersion: azure.fleetctl.io/v1
        kind: HubCertificate
        metadata: {name: rootca, target: azure-prod}
        spec: {certificatePem: {file: certs/rootca.pem}}
        ---
        apiVersion: azure.fleetctl.io/v1
        kind: Device
        metadata: {name: d1, target: azure-prod}
        spec:
          authentication: {type: x509CA, certificatePem: {file: certs/d1.pem}, caCertificate: rootca}
        ---
        apiVersion: azure.fleetctl.io/v1
        kind: EnrollmentGroup
        metadata: {name: sk-group, target: azure-prod}
        spec:
          attestation: {symmetricKey: {primaryKey: {env: GROUP_KEY}}}
        ---
        apiVersion: azure.fleetctl.io/v1
        kind: Device
        metadata: {name: d2, target: azure-prod}
        spec:
          authentication: {type: symmetricKey, primaryKey: {env: GROUP_KEY}}
        """)
    root.mkdir(exist_ok=True)
    (root / "fleet.yaml").write_text(text)
    got = {}
    for f in findings(root, "FL018", "FL019", "FL020"):
        got.setdefault(f.rule, []).append(f.message)
    assert len(got["FL019"]) == 2 and "used by 2 documents (Device d2, EnrollmentGroup sk-group)" in got["FL019"][0]
    assert got["FL020"] == ["device 'd1' uses CA 'rootca', which is not declared as a verified HubCertificate"]
    assert sorted(got["FL018"]) == [
        "Device 'd2' uses symmetric-key attestation",
        "EnrollmentGroup 'sk-group' uses symmetric-key attestation",
    ]


def test_device_cloud_crosscheck_is_a_lint_finding(tmp_path):
    ws = workspace(tmp_path, example=False, files={"fleet.yaml": FINDINGS})
    found = findings(ws.fleet, "FL017")
    assert any("tls-port" in f.message and f.address == "device/DeviceConfig/west" for f in found), found
    assert all(f.source.file.endswith("fleet.yaml") and f.source.line > 0 for f in found)
    assert not any("cross-region" in f.message for f in found)  # FL009's


def test_sarif_carries_the_effective_findings(tmp_path, monkeypatch):
    write(tmp_path / "fleet", policy("demo", DEMO) + group("demo") + things(2))
    monkeypatch.chdir(tmp_path)
    res = run_cli("lint", "fleet", "--format", "sarif", env=ENV)
    assert res.exit_code == 2
    run = json.loads(res.stdout)["runs"][0]
    cross = [r for r in run["results"] if r["ruleId"] == "FL011"]
    assert cross and cross[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == line_of(
        tmp_path / "fleet", "Effect: Allow"
    )
    assert "can publish to $aws/things/esp32-B/shadow/update" in cross[0]["message"]["text"]


def test_fl003_accepts_a_per_device_policy_naming_its_device(tmp_path):
    """FL003 (text) refined: a policy in effect only for dev-A that names dev-A literally is scoped."""
    per_device = f"""\
    - Effect: Allow
      Action: [iot:Publish]
      Resource: "{A}topic/dt/esp32-A/*"
    """
    root = write(tmp_path / "fleet", policy("p", per_device) + group("p") + things(1))
    assert findings(root, "FL003") == []
    root = write(tmp_path / "fleet2", policy("p", per_device) + group("p") + things(2))
    [f] = findings(root, "FL003")  # esp32-B may use esp32-A's topic too
    assert "lets every device use" in f.message
    assert any("esp32-B" in x.message and "dt/esp32-A/telemetry" in x.message for x in findings(root, "FL011"))
