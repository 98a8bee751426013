"""Bad input: every error at once, each with file:line:col, field and what was expected; exit 1, no traceback."""

from __future__ import annotations

import textwrap
from pathlib import Path

from engine.manifest.fleet import load_fleet
from tests.conftest import FLEET, run_subprocess

BAD = {
    "targets.yaml": """\
        apiVersion: fleetctl.io/v1
        kind: Target
        metadata: {name: aws-eu}
        spec:
          aws: {region: eu-west-2}
        ---
        apiVersion: fleetctl.io/v1
        kind: Target
        metadata: {name: azure-prod}
        spec:
          azure:
            hub:
              hostName: hub.azure-devices.net
              connectionString: "HostName=hub;SharedAccessKeyName=iothubowner;SharedAccessKey=abc"
        """,
    "things.yaml": """\
        apiVersion: aws.fleetctl.io/v1
        kind: Thingg
        metadata: {name: t1, target: aws-eu}
        spec: {}
        ---
        apiVersion: aws.fleetctl.io/v1
        kind: Thing
        metadata: {name: t2, target: aws-eu}
        spec:
          thingTyp: springpark
        ---
        apiVersion: aws.fleetctl.io/v1
        kind: Thing
        metadata: {name: t3, target: aws-eu}
        spec:
          attributes: [not, a, map]
        ---
        apiVersion: aws.fleetctl.io/v1
        kind: Thing
        metadata: {name: t4, target: aws-eu}
        spec:
          principals: [no-such-cert]
          groups: [paris-readerz]
        ---
        apiVersion: aws.fleetctl.io/v1
        kind: ThingGroup
        metadata: {name: paris-readers, target: aws-eu}
        spec: {}
        ---
        apiVersion: aws.fleetctl.io/v1
        kind: ThingGroup
        metadata: {name: paris-readers, target: aws-eu}
        spec: {}
        ---
        apiVersion: aws.fleetctl.io/v1
        kind: Thing
        metadata: {name: t5, target: aws-us}
        spec: {}
        """,
    "dup.yaml": """\
        apiVersion: aws.fleetctl.io/v1
        kind: Policy
        metadata: {name: p, target: aws-eu}
        spec:
          document: {Version: "2012-10-17", Statement: []}
          document: {Version: "2012-10-17", Statement: []}
        """,
}


def write_fleet(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


def rendered(root: Path) -> list[str]:
    return [d.render() for d in load_fleet(root, env={}).diagnostics.sorted()]


def test_every_error_at_once_with_positions(tmp_path):
    out = "\n".join(rendered(write_fleet(tmp_path, BAD)))
    expected = [
        "dup.yaml:6:3: error: field 'spec.document': duplicate key in mapping",
        "targets.yaml:14:7: error: fleetctl/Target/azure-prod: field 'spec.azure.hub.connectionString': a literal value where a secret reference belongs",
        "things.yaml:2:1: error: field 'kind': unknown kind 'Thingg' for aws.fleetctl.io/v1 (did you mean 'Thing'?)",
        "things.yaml:10:3: error: aws/aws-eu/Thing/t2: field 'spec.thingTyp': unknown field 'thingTyp' (did you mean 'thingType'?)",
        "things.yaml:16:3: error: aws/aws-eu/Thing/t3: field 'spec.attributes': Input should be a valid dictionary",
        "things.yaml:22:16: error: aws/aws-eu/Thing/t4: field 'spec.principals.0': unresolved reference: no Certificate named 'no-such-cert' in target 'aws-eu'",
        "things.yaml:23:12: error: aws/aws-eu/Thing/t4: field 'spec.groups.0': unresolved reference: no ThingGroup named 'paris-readerz' in target 'aws-eu' (did you mean 'paris-readers'?)",
        "things.yaml:32:12: error: aws/aws-eu/ThingGroup/paris-readers: duplicate address aws/aws-eu/ThingGroup/paris-readers",
        "things.yaml:37:22: error: aws/aws-us/Thing/t5: field 'metadata.target': unknown target 'aws-us' (did you mean 'aws-eu'?)",
    ]
    for line in expected:
        assert line in out, f"missing diagnostic:\n{line}\n--- got ---\n{out}"
    assert "HostName=hub" not in out and "SharedAccessKey=abc" not in out  # the literal secret is not echoed


def test_unknown_field_lists_what_is_expected(tmp_path):
    out = "\n".join(
        rendered(write_fleet(tmp_path, {"things.yaml": BAD["things.yaml"], "targets.yaml": BAD["targets.yaml"]}))
    )
    assert "expected one of: attributes, billingGroup, groups, principals, thingType" in out


def test_validate_cli_exit_1_no_traceback_nothing_changed(tmp_path):
    write_fleet(tmp_path, BAD)
    res = run_subprocess("validate", str(tmp_path))
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert "error(s) in" in res.stderr and "nothing was changed" in res.stderr


def test_plan_on_invalid_fleet_exits_1_without_reading_the_cloud(tmp_path):
    write_fleet(tmp_path, BAD)
    res = run_subprocess("plan", str(tmp_path), env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert res.exit_code == 1
    assert "Traceback" not in res.output and "unknown kind 'Thingg'" in res.stderr


def test_example_fleet_is_valid():
    fleet = load_fleet(FLEET, env={})
    assert not fleet.diagnostics.has_errors, [d.render() for d in fleet.diagnostics]
    assert {m.decl.kind for m in fleet.manifests} >= {
        "Target",
        "CACertificate",
        "Certificate",
        "Policy",
        "ThingType",
        "ThingGroup",
        "Thing",
        "TopicRule",
    }


def test_private_key_is_refused_as_certificate(tmp_path):
    from engine.sandbox.certs import make_ca

    ca = make_ca("Test CA")
    (tmp_path / "key.pem").write_text(ca.key_pem())
    write_fleet(
        tmp_path,
        {
            "f.yaml": """\
        apiVersion: fleetctl.io/v1
        kind: Target
        metadata: {name: aws-eu}
        spec: {aws: {region: eu-west-2}}
        ---
        apiVersion: aws.fleetctl.io/v1
        kind: Certificate
        metadata: {name: c, target: aws-eu}
        spec:
          certificatePem: {file: key.pem}
        """
        },
    )
    out = "\n".join(rendered(tmp_path))
    assert "holds a private key; fleetctl reads only certificates" in out
    assert "BEGIN" not in out


def test_secret_file_inside_repo_is_an_error(tmp_path):
    write_fleet(
        tmp_path,
        {
            "t.yaml": """\
        apiVersion: fleetctl.io/v1
        kind: Target
        metadata: {name: az}
        spec:
          azure:
            hub: {hostName: h.azure-devices.net, connectionString: {file: hub.secret}}
        """
        },
    )
    (tmp_path / "hub.secret").write_text("HostName=x")
    from engine.manifest.secrets import resolve_secret_value
    from engine.model import SecretRef

    value = resolve_secret_value(SecretRef("file", "hub.secret"), tmp_path, {})
    assert isinstance(value, ValueError) and "inside the fleet repository" in str(value)


def test_azure_hub_certificate_in_an_aws_target_is_a_diagnostic_not_a_crash(tmp_path):
    # found by the type checker: the HubCertificate's expand read `target.spec.azure.arm` of an AWS Target
    # (azure is None there) and load_fleet died with AttributeError instead of naming the wrong target
    out = rendered(
        write_fleet(
            tmp_path,
            {
                "fleet.yaml": """\
        apiVersion: fleetctl.io/v1
        kind: Target
        metadata: {name: aws-eu}
        spec:
          aws: {region: eu-west-1}
        ---
        apiVersion: azure.fleetctl.io/v1
        kind: HubCertificate
        metadata: {name: rootca, target: aws-eu}
        spec:
          certificatePem: {file: ca.pem}
        """
            },
        )
    )
    assert any("target 'aws-eu' has no azure section, but HubCertificate is an azure kind" in line for line in out), out
