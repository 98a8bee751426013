"""fleetctl lint: each rule on manifests written here (certificates generated at run time), positions,
suppression by annotation and config, rule selection, exit codes, and the text / JSON / SARIF outputs."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest

from engine.lint import Level, LintConfig, all_rules, lint
from engine.sandbox.certs import issue, make_ca
from tests.conftest import FLEET, run_cli

NOW = "2026-11-21T10:00:00Z"
NOW_DT = dt.datetime(2026, 11, 21, 10, tzinfo=dt.UTC)
ENV = {"FLEETCTL_NOW": NOW}

TARGETS = """\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: aws-eu}
spec:
  aws: {region: eu-west-2, accountId: "123456789012"}
---
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: azure-prod}
spec:
  azure:
    hub: {hostName: iot-fleet-prod.azure-devices.net, connectionString: {env: HUB_CS}}
"""

# The u-blox application note's demo policy (seed 002, §2.1 step 3): every action on every resource.
DEMO_POLICY = """\
apiVersion: aws.fleetctl.io/v1
kind: Policy
metadata: {name: demo-policy, target: aws-eu}
spec:
  document:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Action: iot:*
        Resource: "*"
"""

# Copied from the note's production example: scoped per thing, but to us-west-2 while the target is eu-west-2;
# and a shared broadcast topic every device may publish to.
COPIED_POLICY = """\
apiVersion: aws.fleetctl.io/v1
kind: Policy
metadata: {name: copied-policy, target: aws-eu}
spec:
  document:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Action: iot:Connect
        Resource: "arn:aws:iot:us-west-2:123456789012:client/${iot:Connection.Thing.ThingName}"
      - Effect: Allow
        Action: [iot:Publish]
        Resource: ["arn:aws:iot:eu-west-2:123456789012:topic/fleet/broadcast"]
"""


def _fleet(root: Path, **files: str) -> Path:
    for name, text in {"targets.yaml": TARGETS, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _by_rule(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in result.active:
        out.setdefault(f.rule, []).append(f)
    return out


def test_example_fleet_is_clean() -> None:
    res = run_cli("lint", str(FLEET), env=ENV)
    assert res.exit_code == 0, res.output
    assert "No findings" in res.stdout


def test_policy_rules_point_at_the_statement_fields(tmp_path: Path) -> None:
    root = _fleet(tmp_path / "fleet", **{"policies.yaml": DEMO_POLICY + "---\n" + COPIED_POLICY})
    found = _by_rule(lint(root, LintConfig(), env=ENV))
    policy_file = root / "policies.yaml"
    (action,) = found["FL001"]
    assert action.source.file == "fleet/policies.yaml" and action.source.line == _line(policy_file, "Action: iot:*")
    assert action.level is Level.ERROR and "iot:*" in action.message
    assert action.address == "aws/aws-eu/Policy/demo-policy"
    (resource,) = found["FL002"]
    assert resource.source.line == _line(policy_file, 'Resource: "*"')
    (unscoped,) = found["FL003"]
    assert "topic/fleet/broadcast" in unscoped.message and unscoped.level is Level.WARNING
    assert unscoped.source.line == _line(policy_file, "topic/fleet/broadcast")
    (region,) = found["FL010"]
    assert "us-west-2" in region.message and "eu-west-2" in region.message
    assert set(found) == {"FL001", "FL002", "FL003", "FL010"}


def _certs(root: Path) -> dict[str, str]:
    ca = make_ca("Fleet CA")
    other_ca = make_ca("Somebody else's CA")
    pems = {
        "ca.pem": ca.pem,
        "d1.pem": issue({"CN": "DEV1"}, ca).pem,
        "d2.pem": issue({"CN": "DEV2"}, ca).pem,
        "soon.pem": issue({"CN": "SOON"}, ca, not_before=NOW_DT - dt.timedelta(days=355), days=365).pem,
        "gone.pem": issue({"CN": "GONE"}, ca, not_before=NOW_DT - dt.timedelta(days=400), days=365).pem,
        "stray.pem": issue({"CN": "STRAY"}, other_ca).pem,
        "stray2.pem": issue({"CN": "STRAY2"}, other_ca).pem,
        "device1.pem": issue({"CN": "device1"}, ca).pem,
        "wrong-cn.pem": issue({"CN": "someone-else"}, ca).pem,
        "solo.pem": issue({"CN": "solo"}, ca).pem,
    }
    for name, pem in pems.items():
        (root / "certs").mkdir(parents=True, exist_ok=True)
        (root / "certs" / name).write_text(pem)
    return pems


def _cert_doc(name: str, pem: str, ca: str | None = "fleet-ca") -> str:
    ca_line = f"\n  caCertificate: {ca}" if ca else ""
    return (
        f"apiVersion: aws.fleetctl.io/v1\nkind: Certificate\nmetadata: {{name: {name}, target: aws-eu}}\n"
        f"spec:\n  certificatePem: {{file: certs/{pem}}}{ca_line}\n---\n"
    )


def _thing(name: str, *principals: str) -> str:
    return (
        f"apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {{name: {name}, target: aws-eu}}\n"
        f"spec:\n  principals: [{', '.join(principals)}]\n---\n"
    )


CA_DOC = (
    "apiVersion: aws.fleetctl.io/v1\nkind: CACertificate\nmetadata: {name: fleet-ca, target: aws-eu}\n"
    "spec:\n  certificatePem: {file: certs/ca.pem}\n---\n"
)


def test_certificate_rules(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    _certs(root)
    aws = (
        CA_DOC
        + _cert_doc("d1", "d1.pem")
        + _cert_doc("d1-again", "d1.pem")
        + _cert_doc("soon", "soon.pem")
        + _cert_doc("gone", "gone.pem")
        + _cert_doc("stray", "stray.pem", ca=None)
        + _cert_doc("claims-fleet-ca", "stray2.pem")
        + _thing("DEV1", "d1")
        + _thing("DEV2", "d1")
        + _thing("DEV3", "soon")
    )
    _fleet(root, **{"aws.yaml": aws})
    found = _by_rule(lint(root, LintConfig(), env=ENV))

    shared = found["FL004"]
    assert sorted(f.address for f in shared) == [
        "aws/aws-eu/Certificate/d1-again",
        "aws/aws-eu/Thing/DEV1",
        "aws/aws-eu/Thing/DEV2",
    ]
    assert any("certificate 'd1' is used by 2 devices (Thing DEV1, Thing DEV2)" in f.message for f in shared)
    assert any("same certificate as 'd1'" in f.message for f in shared)

    expiry = {f.address.rsplit("/", 1)[1]: f for f in found["FL005"]}
    assert set(expiry) == {"soon", "gone"}
    assert expiry["soon"].level is Level.WARNING and "in 10 day(s)" in expiry["soon"].message
    assert expiry["gone"].level is Level.ERROR and expiry["gone"].message.startswith("certificate CN=GONE expired")

    issuer = {f.address.rsplit("/", 1)[1]: f for f in found["FL006"]}
    assert set(issuer) == {"stray", "claims-fleet-ca"}
    assert issuer["stray"].level is Level.WARNING and "Somebody else's CA" in issuer["stray"].message
    assert issuer["claims-fleet-ca"].level is Level.ERROR
    lines = (root / "aws.yaml").read_text().splitlines()
    declared_at = _line(root / "aws.yaml", "name: claims-fleet-ca")
    assert lines[issuer["claims-fleet-ca"].source.line - 1] == "  caCertificate: fleet-ca"
    assert issuer["claims-fleet-ca"].source.line > declared_at

    # the expiry threshold is an option: 5 days leaves only the expired certificate
    few = lint(root, LintConfig(select=("FL005",), options={"FL005": {"days": 5}}), env=ENV)
    assert [f.address for f in few.active] == ["aws/aws-eu/Certificate/gone"]


AZURE = """\
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: device1, target: azure-prod}
spec:
  authentication:
    type: x509CA
    certificatePem: {file: certs/device1.pem}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: device2, target: azure-prod}
spec:
  authentication:
    type: x509CA
    certificatePem: {file: certs/wrong-cn.pem}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: "bad id", target: azure-prod}
spec:
  authentication: {type: symmetricKey, primaryKey: {env: SHARED_KEY}}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: device4, target: azure-prod}
spec:
  authentication: {type: symmetricKey, primaryKey: {env: SHARED_KEY}}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: device5, target: azure-prod}
spec:
  authentication: {type: selfSigned, primaryThumbprint: 00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: device6, target: azure-prod}
spec:
  authentication: {type: selfSigned, primaryThumbprint: 00aa00aa00aa00aa00aa00aa00aa00aa00aa00aa}
---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: enrollment-1, target: azure-prod}
spec:
  registrationId: device1_
  attestation: {x509: {certificatePem: {file: certs/device1.pem}}}
---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: enrollment-2, target: azure-prod}
spec:
  registrationId: someone
  attestation: {x509: {certificatePem: {file: certs/wrong-cn.pem}}}
---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: enrollment-3, target: azure-prod}
spec:
  registrationId: device1
  attestation: {x509: {certificatePem: {file: certs/device1.pem}}}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: solo, target: azure-prod}
spec:
  authentication: {type: x509CA, certificatePem: {file: certs/solo.pem}}
---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: solo-enrollment, target: azure-prod}
spec:
  registrationId: solo
  attestation: {x509: {certificatePem: {file: certs/solo.pem}}}
---
apiVersion: azure.fleetctl.io/v1
kind: EnrollmentGroup
metadata: {name: dps-group, target: azure-prod}
spec:
  attestation: {x509: {signingCertificatePem: {file: certs/ca.pem}}}
"""


def test_azure_rules_on_device_enrollment_and_group_manifests(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    _certs(root)
    _fleet(root, **{"azure.yaml": AZURE})
    found = _by_rule(lint(root, LintConfig(), env=ENV))
    azure_file = root / "azure.yaml"
    ids = {f.address: f for f in found["FL007"]}
    assert set(ids) == {"azure/azure-prod/Device/bad id", "azure/azure-prod/Enrollment/enrollment-1"}
    assert ids["azure/azure-prod/Enrollment/enrollment-1"].source.line == _line(azure_file, "registrationId: device1_")
    cn = {f.address: f.message for f in found["FL008"]}
    assert cn == {
        "azure/azure-prod/Device/device2": "device id 'device2' differs from its certificate's CN 'someone-else' "
        "(authentication.certificatePem)",
        "azure/azure-prod/Enrollment/enrollment-1": "registration id 'device1_' differs from its certificate's CN "
        "'device1' (attestation.x509.certificatePem)",
        "azure/azure-prod/Enrollment/enrollment-2": "registration id 'someone' differs from its certificate's CN "
        "'someone-else' (attestation.x509.certificatePem)",
    }
    shared = sorted(f.address for f in found["FL004"])
    assert shared == [
        "azure/azure-prod/Device/bad id",
        "azure/azure-prod/Device/device1",
        "azure/azure-prod/Device/device2",
        "azure/azure-prod/Device/device4",
        "azure/azure-prod/Device/device5",
        "azure/azure-prod/Device/device6",
        "azure/azure-prod/Enrollment/enrollment-1",
        "azure/azure-prod/Enrollment/enrollment-2",
        "azure/azure-prod/Enrollment/enrollment-3",
    ]  # a Device and its own enrollment (solo) are one
    assert any(
        f.message == "key {env: SHARED_KEY} is used by 2 devices (device bad id, device device4)"
        for f in found["FL004"]
    )
    # device certificates issued by the EnrollmentGroup's CA count as issued by a declared CA
    assert "FL006" not in found


def test_rule_functions_on_plain_documents() -> None:
    """The Azure rules read spec fields generically: they hold on plain dicts, whichever kinds are registered."""
    from engine.lint import LintContext, ManifestDoc
    from engine.lint.rules import azure_id_format
    from engine.manifest.loader import Document

    data = {
        "apiVersion": "azure.fleetctl.io/v1",
        "kind": "Enrollment",
        "metadata": {"name": "e", "target": "t"},
        "spec": {"registrationId": "x" * 129},
    }
    doc = ManifestDoc(Document("f.yaml", 0, data), "azure.fleetctl.io", "Enrollment", "e", "t", "azure/t/Enrollment/e")
    hits = list(azure_id_format(LintContext(Path("."), [doc], NOW_DT), {}))
    assert [h.path for h in hits] == [("spec", "registrationId")]


DEVICE_CONFIG = """\
apiVersion: device.fleetctl.io/v1
kind: DeviceConfig
metadata: {name: paris-readers}
spec:
  model: springcard-springpark
  selector: {matchLabels: {site: paris}}
  values:
    mqtt_broker:
      host: a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com
      url: "mqtts://a1b2c3d4e5f6g7-ats.iot.eu-west-2.amazonaws.com:8883"
"""


def test_cross_region_endpoint_in_a_device_config(tmp_path: Path) -> None:
    root = _fleet(tmp_path / "fleet", **{"devices.yaml": DEVICE_CONFIG})
    (finding,) = lint(root, LintConfig(select=("FL009",)), env=ENV).active
    assert finding.source.line == _line(root / "devices.yaml", "us-east-1")
    assert finding.message == (
        "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com is in us-east-1, but target 'aws-eu' is in eu-west-2"
    )


def test_suppression_by_annotation_and_config_and_exit_codes(tmp_path: Path) -> None:
    annotated = COPIED_POLICY.replace(
        "metadata: {name: copied-policy, target: aws-eu}",
        'metadata:\n  name: copied-policy\n  target: aws-eu\n  annotations: {fleetctl.io/lint-ignore: "FL003, FL010"}',
    )
    root = _fleet(tmp_path / "fleet", **{"policies.yaml": annotated})
    res = run_cli("lint", str(root), env=ENV)
    assert res.exit_code == 0, res.output
    assert "No findings" in res.stdout and "2 suppressed" in res.stdout
    sarif = json.loads(run_cli("lint", str(root), "--format", "sarif", env=ENV).stdout)
    results = sarif["runs"][0]["results"]
    assert sorted(r["ruleId"] for r in results) == ["FL003", "FL010"]
    assert all(r["suppressions"][0]["kind"] == "inSource" for r in results)

    (root / "demo.yaml").write_text(DEMO_POLICY)
    assert run_cli("lint", str(root), env=ENV).exit_code == 2
    assert run_cli("lint", str(root), "--ignore", "FL001,FL002", env=ENV).exit_code == 0
    assert run_cli("lint", str(root), "--select", "FL003", env=ENV).exit_code == 0
    (root / ".fleetctl-lint.yaml").write_text("ignore: [FL001]\nrules:\n  FL002: {level: warning}\n")
    res = run_cli("lint", str(root), "--format", "json", env=ENV)
    assert res.exit_code == 2
    report = json.loads(res.stdout)
    assert [(f["rule"], f["level"]) for f in report["findings"] if "suppressed" not in f] == [("FL002", "warning")]
    assert "FL001" not in report["rules"]


@pytest.mark.parametrize(
    "config, message",
    [
        ("select: [FL999]\n", "unknown lint rule 'FL999'"),
        ("rules:\n  FL005: {days: soon}\n", "rules.FL005.days must be a int"),
        ("rules:\n  FL005: {weeks: 2}\n", "unknown option(s) weeks"),
        ("colour: red\n", "holds only: select, ignore, rules"),
    ],
)
def test_bad_config_is_an_error(tmp_path: Path, config: str, message: str) -> None:
    root = _fleet(tmp_path / "fleet")
    (root / ".fleetctl-lint.yaml").write_text(config)
    res = run_cli("lint", str(root), env=ENV)
    assert res.exit_code == 1 and message in res.stderr


def test_unknown_rule_on_the_command_line_and_broken_yaml_are_errors(tmp_path: Path) -> None:
    root = _fleet(tmp_path / "fleet", **{"demo.yaml": DEMO_POLICY})
    res = run_cli("lint", str(root), "--select", "FL0X", env=ENV)
    assert res.exit_code == 1 and "unknown lint rule 'FL0X'" in res.stderr
    (root / "broken.yaml").write_text("kind: [unclosed\n")
    res = run_cli("lint", str(root), env=ENV)
    assert res.exit_code == 1
    assert "fleet/broken.yaml:2" in res.stderr and "FL001" in res.stdout  # the readable files are still linted
    assert run_cli("lint", str(tmp_path / "nowhere"), env=ENV).exit_code == 1


def test_sarif_shape_for_code_scanning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fleet(tmp_path / "fleet", **{"policies.yaml": DEMO_POLICY + "---\n" + COPIED_POLICY})
    monkeypatch.chdir(tmp_path)
    res = run_cli("lint", "fleet", "--format", "sarif", "--output", "out/lint.sarif", env=ENV)
    assert res.exit_code == 2 and res.stdout == ""
    sarif = json.loads((tmp_path / "out" / "lint.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    (run,) = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "fleetctl-lint"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert rule_ids == sorted(i for i, r in all_rules().items() if r.default_on) and len(set(rule_ids)) == len(rule_ids)
    for r in driver["rules"]:
        assert r["shortDescription"]["text"] and r["help"]["text"]
        assert r["defaultConfiguration"]["level"] in ("error", "warning", "note")
        assert 0 < float(r["properties"]["security-severity"]) <= 10
    text = run_cli("lint", "fleet", env=ENV).stdout
    assert len(run["results"]) == 4
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note") and result["message"]["text"]
        (loc,) = result["locations"]
        physical = loc["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "fleet/policies.yaml"
        line = physical["region"]["startLine"]
        assert f"fleet/policies.yaml:{line}:{physical['region']['startColumn']}: {result['ruleId']}" in text
        assert loc["logicalLocations"][0]["fullyQualifiedName"].startswith("aws/aws-eu/Policy/")
        assert len(result["partialFingerprints"]["fleetctlFinding/v1"]) == 32
    assert run["invocations"] == [{"executionSuccessful": True}]


def test_list_rules_names_every_rule() -> None:
    res = run_cli("lint", "--list-rules")
    assert res.exit_code == 0
    assert [line.split()[0] for line in res.stdout.splitlines()] == sorted(all_rules())
