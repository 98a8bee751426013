"""Issue 13.5: file references stay inside the fleet folder (after symlinks) unless a Target allows a directory;
names that become addresses and artifact paths follow the services' own rules."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from engine.manifest.confine import FilePolicy, FileRefError, allowance_problem
from engine.manifest.fleet import load_fleet
from engine.model import SecretRef
from tests.conftest import FLEET, run_cli

CANARY = "CANARY-c0nf1ne-7f3a"
TARGET = """\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: aws-eu}
spec:
  aws: {region: eu-west-2}
"""


def cert_doc(ref: str, name: str = "c1") -> str:
    return textwrap.dedent(f"""\
        apiVersion: aws.fleetctl.io/v1
        kind: Certificate
        metadata: {{name: {name}, target: aws-eu}}
        spec:
          certificatePem: {{file: "{ref}"}}
        """)


def make_fleet(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "fleet"
    root.mkdir(parents=True, exist_ok=True)
    for name, text in {"targets.yaml": TARGET, **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def errors(root: Path, env: dict[str, str] | None = None) -> list[str]:
    return [d.render() for d in load_fleet(root, env=env or {}).diagnostics.sorted() if d.severity.value == "error"]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file next to (outside) the fleet folder whose content is a canary."""
    path = tmp_path / "outside" / "stolen.pem"
    path.parent.mkdir()
    path.write_text(CANARY + "\n")
    return path


@pytest.mark.parametrize("how", ["relative", "absolute", "home", "symlink", "symlinked-folder"])
def test_public_file_escaping_the_fleet_is_an_error_at_its_line(
    tmp_path: Path, outside: Path, how: str, monkeypatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    ref = {
        "relative": "../outside/stolen.pem",
        "absolute": str(outside),
        "home": "~/outside/stolen.pem",
        "symlink": "certs/link.pem",
        "symlinked-folder": "shared/stolen.pem",
    }[how]
    root = make_fleet(tmp_path, {"certs.yaml": cert_doc(ref)})
    if how == "symlink":
        (root / "certs").mkdir()
        os.symlink(outside, root / "certs" / "link.pem")
    if how == "symlinked-folder":
        os.symlink(outside.parent, root / "shared")
    [message] = errors(root)
    assert message.startswith(
        "fleet/certs.yaml:5:3: error: aws/aws-eu/Certificate/c1: field 'spec.certificatePem': "
        f"file reference '{ref}' resolves outside the fleet folder"
    ), message
    assert CANARY not in message


def test_escape_is_reported_whether_or_not_the_file_exists(tmp_path: Path) -> None:
    root = make_fleet(tmp_path, {"certs.yaml": cert_doc("../../no/such/file.pem")})
    [message] = errors(root)
    assert "resolves outside the fleet folder" in message  # no oracle for what exists outside


def test_file_inside_the_fleet_is_read(tmp_path: Path) -> None:
    root = make_fleet(tmp_path, {"certs.yaml": cert_doc("certs/da1275b0.pem")})
    (root / "certs").mkdir()
    shutil.copy(FLEET / "aws" / "certs" / "da1275b0.pem", root / "certs" / "da1275b0.pem")
    assert errors(root) == []


def test_csv_value_substituted_into_a_file_path_is_an_error_at_its_row(tmp_path: Path, outside: Path) -> None:
    thingset = textwrap.dedent("""\
        apiVersion: fleetctl.io/v1
        kind: ThingSet
        metadata: {name: readers}
        spec:
          csv: {file: devices.csv, id: serial}
          template:
            - apiVersion: aws.fleetctl.io/v1
              kind: Certificate
              metadata: {name: "c-${serial}", target: aws-eu}
              spec: {certificatePem: {file: "certs/${cert}.pem"}}
        """)
    root = make_fleet(tmp_path, {"set.yaml": thingset})
    (root / "devices.csv").write_text("serial,cert\nA1,../../outside/stolen\nA2,/etc/passwd\nA3,..\n")
    found = errors(root)
    for line in (2, 3, 4):
        assert any(
            m.startswith(f"fleet/devices.csv:{line}:1: error: column 'cert' is substituted into a file path")
            for m in found
        ), found
    assert all(CANARY not in m for m in found)


def test_thingset_csv_file_outside_the_fleet_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("id\n1\n")
    root = make_fleet(
        tmp_path,
        {
            "set.yaml": textwrap.dedent("""\
        apiVersion: fleetctl.io/v1
        kind: ThingSet
        metadata: {name: s}
        spec:
          csv: {file: ../rows.csv}
          template:
            - {apiVersion: aws.fleetctl.io/v1, kind: ThingType, metadata: {name: "t${id}", target: aws-eu}, spec: {}}
        """)
        },
    )
    [message] = errors(root)
    assert (
        "fleet/set.yaml:5:9: error: field 'spec.csv.file': CSV file reference '../rows.csv' resolves outside" in message
    )


def _azure_target(ref: str, allow: list[str] | None = None) -> str:
    files = f"\n  files: {{allow: {allow!r}}}" if allow is not None else ""
    return (
        textwrap.dedent(f"""\
        apiVersion: fleetctl.io/v1
        kind: Target
        metadata: {{name: az}}
        spec:
          azure:
            hub: {{hostName: h.azure-devices.net, connectionString: {{file: "{ref}"}}}}""")
        + files
        + "\n"
    )


def test_secret_file_needs_an_allowance_and_works_with_one(tmp_path: Path, outside: Path, monkeypatch) -> None:
    from engine.manifest.core_kinds import unresolved_credentials

    monkeypatch.setenv("HOME", str(tmp_path))
    root = make_fleet(tmp_path, {"az.yaml": _azure_target("~/outside/stolen.pem")})
    fleet = load_fleet(root, env={})
    spec = fleet.targets()["az"].spec
    [problem] = unresolved_credentials(spec, root, {})
    assert "resolves outside the fleet folder" in problem and "spec.files.allow" in problem and CANARY not in problem
    root = make_fleet(tmp_path / "2", {"az.yaml": _azure_target("~/outside/stolen.pem", ["~/outside"])})
    spec = load_fleet(root, env={}).targets()["az"].spec
    assert unresolved_credentials(spec, root, {}) == []


@pytest.mark.parametrize(
    "entry, why",
    [
        ("/", "file system root"),
        ("~", "holds the home directory"),
        ("relative/keys", "not an absolute path"),
        ("PARENT", "contains the fleet folder"),
    ],
)
def test_too_broad_allowances_are_refused_at_their_line(tmp_path: Path, monkeypatch, entry: str, why: str) -> None:
    monkeypatch.setenv("HOME", "/nonexistent/home-of-the-test")
    entry = str(tmp_path) if entry == "PARENT" else entry
    root = make_fleet(tmp_path, {"targets.yaml": TARGET + f"  files: {{allow: [{entry!r}]}}\n"})
    [message] = errors(root)
    assert message.startswith(
        "fleet/targets.yaml:6:19: error: fleetctl/Target/aws-eu: field 'spec.files.allow.0': files.allow: "
    ), message
    assert why in message


def test_example_fleet_keys_need_its_allowance(tmp_path: Path, fleet_dir: Path, monkeypatch) -> None:
    """The example fleet reads the device keys from ~/.fleetctl/keys through `files.allow`; without it each key
    reference is an error at its line."""
    home = tmp_path / "home"
    (home / ".fleetctl" / "keys").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    assert run_cli("validate", str(fleet_dir), env={"HOME": str(home)}).exit_code == 0
    targets = fleet_dir / "targets.yaml"
    targets.write_text(targets.read_text().replace('  files: {allow: ["~/.fleetctl/keys"]}\n', ""))
    res = run_cli("validate", str(fleet_dir), env={"HOME": str(home)})
    assert res.exit_code == 1
    for file in ("esp32.yaml", "nina-w13.yaml", "spwf01.yaml"):
        assert f"fleet/devices/{file}:" in res.stderr and "~/.fleetctl/keys/" in res.stderr, res.stderr


def test_policy_unit(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.pem").write_text("x")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "k").write_text("k")
    policy = FilePolicy.of(root, [str(keys)])
    assert policy.locate("x.pem", [root / "a", root]) == (root / "a" / "x.pem").resolve()
    assert policy.locate(str(keys / "k"), [root]) == (keys / "k").resolve()
    with pytest.raises(FileRefError, match="NUL"):
        policy.locate("a\x00b", [root])
    with pytest.raises(FileRefError, match="file not found: 'nope.pem'"):
        policy.locate("nope.pem", [root])
    assert allowance_problem(str(keys), root) is None


# ------------------------------------------------------------------------------------------ names and ids


@pytest.mark.parametrize(
    "kind, name, rule",
    [
        ("Thing", "reader.paris.1", "1-128 of letters, digits, ':', '_' and '-'"),
        ("ThingGroup", "paris@readers", "1-128 of letters, digits, ':', '_' and '-'"),
        ("TopicRule", "rule-with-dash", "1-128 of letters, digits and '_'"),
        ("ProvisioningTemplate", "t" * 37, "1-36 of letters, digits, '_' and '-'"),
    ],
)
def test_aws_names_follow_the_service_rules(tmp_path: Path, kind: str, name: str, rule: str) -> None:
    spec = {
        "Thing": "{}",
        "ThingGroup": "{}",
        "TopicRule": "{sql: \"SELECT * FROM 't'\", actions: []}",
        "ProvisioningTemplate": "{templateBody: {}, provisioningRoleArn: 'arn:aws:iam::123456789012:role/r'}",
    }[kind]
    root = make_fleet(
        tmp_path,
        {
            "x.yaml": f"apiVersion: aws.fleetctl.io/v1\nkind: {kind}\n"
            f"metadata: {{name: '{name}', target: aws-eu}}\nspec: {spec}\n"
        },
    )
    found = errors(root)
    assert any("fleet/x.yaml:3:" in m and f"'{name}' is not a valid AWS IoT {kind} name: {rule}" in m for m in found), (
        found
    )


@pytest.mark.parametrize("name", ["../../X", "a/b", ".hidden"])
def test_path_like_metadata_names_are_refused(tmp_path: Path, name: str) -> None:
    root = make_fleet(
        tmp_path,
        {
            "x.yaml": f"apiVersion: aws.fleetctl.io/v1\nkind: Thing\n"
            f"metadata: {{name: '{name}', target: aws-eu}}\nspec: {{}}\n"
        },
    )
    assert any(m.startswith("fleet/x.yaml:3:") and "metadata.name" in m for m in errors(root)), errors(root)


def test_azure_device_ids_follow_the_hub_rules(tmp_path: Path) -> None:
    enrollment = textwrap.dedent("""\
        apiVersion: fleetctl.io/v1
        kind: Target
        metadata: {name: az}
        spec:
          azure:
            hub: {hostName: h.azure-devices.net, connectionString: {env: HUB}}
            dps: {hostName: d.azure-devices-provisioning.net, connectionString: {env: DPS}}
        ---
        apiVersion: azure.fleetctl.io/v1
        kind: Enrollment
        metadata: {name: dev1, target: az}
        spec:
          deviceId: "../../X#1"
          attestation: {symmetricKey: {}}
        """)
    root = make_fleet(tmp_path, {"az.yaml": enrollment})
    assert any(
        "fleet/az.yaml:13:" in m and "'../../X#1' is not a valid IoT Hub device id" in m for m in errors(root)
    ), errors(root)


@pytest.mark.parametrize(
    "model, key, what",
    [
        ("st-spwf01", "../../X", "is not a MAC address"),
        ("esp32-nvs", "24:0A:C4:5F:12", "is not a MAC address"),
        ("springcard-springpark", "DA12/75B0", "is not a device serial number"),
    ],
)
def test_device_ids_are_serials_or_macs(tmp_path: Path, model: str, key: str, what: str) -> None:
    root = make_fleet(
        tmp_path,
        {
            "d.yaml": textwrap.dedent(f"""\
        apiVersion: device.fleetctl.io/v1
        kind: DeviceConfig
        metadata: {{name: d}}
        spec:
          model: {model}
          devices:
            "{key}": {{}}
        """)
        },
    )
    found = errors(root)
    assert any(m.startswith("fleet/d.yaml:7:") and f"'{key}' {what}" in m for m in found), found


def test_artifact_writer_refuses_paths_leaving_its_folder(tmp_path: Path) -> None:
    from engine.providers.device.artifacts import Artifact, ArtifactKind, escaping_artifacts

    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)
    inside = Artifact(
        ArtifactKind.CONFIG if hasattr(ArtifactKind, "CONFIG") else list(ArtifactKind)[0],
        str(out / "DA1275B0.json"),
        True,
        "{}",
    )
    bad = [
        Artifact(inside.kind, str(out / ".." / "x.json"), True, "{}"),
        Artifact(inside.kind, str(out / "link" / "y.json"), True, "{}"),
    ]
    assert escaping_artifacts([inside], out) == []
    problems = escaping_artifacts([inside, *bad], out)
    assert len(problems) == 2 and all("resolves outside the artifacts folder" in p.message for p in problems)


def test_secret_file_resolution_never_leaves_the_fence(tmp_path: Path, outside: Path) -> None:
    from engine.manifest.secrets import resolve_secret_value

    root = make_fleet(tmp_path, {})
    value = resolve_secret_value(SecretRef("file", "../outside/stolen.pem"), root, {})
    assert isinstance(value, ValueError) and "resolves outside the fleet folder" in str(value)
    allowed = resolve_secret_value(
        SecretRef("file", "../outside/stolen.pem"), root, {}, FilePolicy.of(root, [str(outside.parent)])
    )
    assert allowed == CANARY
