"""`fleetctl validate --schema-only` (issue 18.3): the published JSON Schemas, as an editor applies them, end to end
through the CLI: every error of every file at once, each at file:line:col with its field and what was expected,
exit 1 and no traceback; the loader's input limits hold; no file reference is followed; no secret is quoted."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine import schema_gen
from engine.manifest.loader import Document
from engine.manifest.schemacheck import SchemaSet, check_document, ecma_regex, secret_capable
from tests.conftest import FLEET, ROOT, run_cli
from tests.test_loader_hardening import BOMB  # the 700-byte alias bomb, one definition

pytestmark = pytest.mark.filterwarnings("ignore::Warning")

SCHEMAS = schema_gen.published()

THINGS = """\
apiVersion: aws.fleetctl.io/v1
kind: Thing
metadata:
  name: "bad name!"
  target: aws-eu
spec:
  thingTyp: foo
  attributes: {serial: 12}
---
apiVersion: aws.fleetctl.io/v1
kind: Thingy
metadata: {name: x, target: aws-eu}
spec: {}
---
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: azure-prod}
spec:
  azure:
    hub: {hostName: iot-fleet-prod.azure-devices.net, connectionString: "HostName=x;SharedAccessKey=c2VjcmV0"}
"""
CERTS = """\
apiVersion: aws.fleetctl.io/v1
kind: Certificate
metadata: {name: c1}
spec:
  status: ACTIVATED
  policies: [ok, 5]
---
apiVersion: aws.fleetctl.io/v9
kind: Policy
metadata: {name: p, target: aws-eu}
spec: {}
---
- just a list
"""
SYNTAX = "apiVersion: fleetctl.io/v1\nkind: Target\nmetadata: {name: [unclosed\n"
EXPECTED = [
    "broken/aws/things.yaml:4:3: error: field 'metadata.name': expected a text matching the pattern "
    "^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$",
    "broken/aws/things.yaml:7:3: error: field 'spec.thingTyp': unknown field 'thingTyp' (did you mean 'thingType'?)",
    "broken/aws/things.yaml:8:16: error: field 'spec.attributes.serial': expected a text",
    "broken/aws/things.yaml:11:1: error: field 'kind': unknown kind 'Thingy' for aws.fleetctl.io/v1 (did you mean "
    "'Thing'?)",
    "broken/aws/things.yaml:20:55: error: field 'spec.azure.hub.connectionString': expected a secret reference "
    "({env: NAME}, {file: path} or {secretRef: name}) or null",
    "broken/certs.yaml:3:1: error: field 'metadata.target': required field 'target' is missing",
    "broken/certs.yaml:4:1: error: field 'spec.certificatePem': required field 'certificatePem' is missing",
    'broken/certs.yaml:5:3: error: field \'spec.status\': expected one of: "ACTIVE", "INACTIVE", "REVOKED"',
    "broken/certs.yaml:6:18: error: field 'spec.policies.1': expected a text",
    "broken/certs.yaml:8:1: error: field 'apiVersion': apiVersion 'aws.fleetctl.io/v9' is not served for Policy",
    "broken/certs.yaml:13:1: error: a manifest document must be a mapping with apiVersion, kind, metadata and spec",
]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_example_fleet_passes_schema_only():
    res = run_cli("validate", "--schema-only", str(FLEET))
    assert res.exit_code == 0, res.stderr
    count = int(re.search(r"(\d+) document\(s\) valid against the published schemas", res.stdout).group(1))
    assert count >= 20 and res.stderr == ""


def test_every_error_of_every_file_at_once_located_with_field_and_expectation(tmp_path):
    root = write(tmp_path / "broken", {"aws/things.yaml": THINGS, "certs.yaml": CERTS})
    res = run_cli("validate", "--schema-only", str(root))
    assert res.exit_code == 1
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    headlines = [line for line in res.stderr.splitlines() if not line.startswith("    ")]
    assert headlines[:-1] == EXPECTED, res.stderr
    assert headlines[-1] == f"11 error(s) in {root} against the published schemas; nothing was changed."
    details = res.stderr.splitlines()
    assert (
        details[details.index(EXPECTED[1]) + 1].strip()
        == "expected one of: attributes, billingGroup, groups, principals, thingType"
    )
    assert details[details.index(EXPECTED[3]) + 1].strip().startswith("expected one of: AccountAuditConfiguration, ")
    assert details[details.index(EXPECTED[7]) + 1].strip() == 'got "ACTIVATED"'


def test_a_secret_written_as_a_literal_is_never_quoted(tmp_path):
    root = write(tmp_path / "broken", {"aws/things.yaml": THINGS})
    res = run_cli("validate", "--schema-only", str(root))
    assert "c2VjcmV0" not in res.stderr and "SharedAccessKey" not in res.stderr
    assert "got a text of 35 character(s) (not shown: this field may hold a secret)" in res.stderr
    values = {
        "apiVersion": "device.fleetctl.io/v1",
        "kind": "DeviceConfig",
        "metadata": {"name": "d"},
        "spec": {"model": "esp32-nvs", "values": {"wifi_password": "hunter2"}, "prune": "hunter2"},
    }
    assert secret_capable(SCHEMAS.get("device.fleetctl.io/v1", "DeviceConfig").schema, ("spec", "values", "x"))
    diags = check_document(Document("d.yaml", 0, values), SCHEMAS)
    assert [d.field for d in diags] == ["spec.prune"] and "hunter2" in diags[0].detail  # a boolean field: quoted


def test_a_secret_reference_names_exactly_one_source(tmp_path):
    target = (
        "apiVersion: fleetctl.io/v1\nkind: Target\nmetadata: {name: azure-prod}\nspec:\n  azure:\n"
        "    hub: {hostName: h.azure-devices.net, connectionString: {env: A, file: b}}\n"
    )
    root = write(tmp_path / "fleet", {"targets.yaml": target})
    res = run_cli("validate", "--schema-only", str(root))
    assert res.exit_code == 1
    assert res.stderr.startswith(
        "fleet/targets.yaml:6:42: error: field 'spec.azure.hub.connectionString': expected "
        "exactly one of the fields env, file, secretRef\n    got a mapping\n"
    ), res.stderr


def test_a_syntax_error_is_the_loaders_located_diagnostic_and_the_other_files_still_count(tmp_path):
    root = write(tmp_path / "broken", {"a.yaml": SYNTAX, "certs.yaml": CERTS})
    res = run_cli("validate", "--schema-only", str(root))
    assert res.exit_code == 1
    assert re.search(r"^broken/a\.yaml:\d+:\d+: error: invalid YAML", res.stderr, re.M), res.stderr
    assert "broken/certs.yaml:5:3: error: field 'spec.status'" in res.stderr


def test_file_references_are_not_followed(tmp_path):
    """A missing certificate file and a missing ThingSet CSV are no schema error (the full validate reports them)."""
    files = {
        "targets.yaml": "apiVersion: fleetctl.io/v1\nkind: Target\nmetadata: {name: aws-eu}\n"
        "spec: {aws: {region: eu-west-2}}\n",
        "certs.yaml": "apiVersion: aws.fleetctl.io/v1\nkind: Certificate\nmetadata: {name: c1, target: aws-eu}\n"
        "spec: {certificatePem: {file: certs/missing.pem}}\n",
    }
    root = write(tmp_path / "fleet", files)
    res = run_cli("validate", "--schema-only", str(root))
    assert res.exit_code == 0, res.stderr
    assert "2 document(s) valid" in res.stdout
    full = run_cli("validate", str(root))
    assert full.exit_code == 1 and "missing.pem" in full.stderr


def test_the_path_must_exist(tmp_path):
    res = run_cli("validate", "--schema-only", str(tmp_path / "nowhere"))
    assert res.exit_code == 1 and "fleet path not found" in res.stderr and "Traceback" not in res.stderr


# ---------------------------------------------------------------------------------------------- hostile input


def test_the_loaders_limits_hold_for_schema_only(tmp_path):
    deep = "apiVersion: fleetctl.io/v1\nkind: Target\nmetadata: {name: deep}\nspec: " + "[" * 100 + "]" * 100 + "\n"
    root = write(tmp_path / "hostile", {"bomb.yaml": BOMB, "deep.yaml": deep, "big.yaml": "# padding\n" * 200})
    res = run_cli("validate", "--schema-only", str(root), env={"FLEETCTL_MAX_FILE_BYTES": "1000"})
    assert res.exit_code == 1 and "Traceback" not in res.stderr
    assert re.search(r"^hostile/bomb\.yaml:10:23: error: .*FLEETCTL_MAX_ALIAS_NODES=250000", res.stderr, re.M)
    assert re.search(r"^hostile/deep\.yaml:4:\d+: error: .*FLEETCTL_MAX_DEPTH=64", res.stderr, re.M)
    assert re.search(r"^hostile/big\.yaml:1:1: error: .*FLEETCTL_MAX_FILE_BYTES=1000", res.stderr, re.M)


def test_hostile_input_within_the_limits_fails_small_in_a_fresh_process(tmp_path):
    """The most errors a file within the limits holds: a flow list of 100,000 numbers where names belong (the
    densest YAML, 2 bytes a node), beside an alias expansion of 10,000 nodes: every error is reported, in seconds
    and a bounded memory."""
    items = ", ".join(["1"] * 10)
    text = (
        "apiVersion: aws.fleetctl.io/v1\nkind: Certificate\nmetadata: {name: c, target: t}\n"
        f"x: &a [{items}]\ny: &b [" + ", ".join(["*a"] * 1000) + "]\n"
        "spec:\n  certificatePem: {file: c.pem}\n  policies: [" + ", ".join(["1"] * 100_000) + "]\n"
    )
    root = write(tmp_path / "hostile", {"wide.yaml": text})
    script = textwrap.dedent(f"""
        import json, time
        from pathlib import Path
        from engine import schema_gen
        from engine.manifest.schemacheck import check_path
        started = time.perf_counter()
        count, diags = check_path(Path({str(root)!r}), schema_gen.published())
        took = time.perf_counter() - started
        hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        print(json.dumps({{"took": took, "peakMb": hwm / 1024, "errors": len(diags),
                          "first": [d.render() for d in sorted(diags, key=lambda d: d.source)[:3]]}}))
    """)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    import json

    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert time.perf_counter() - started < 60
    assert got["took"] < 20 and got["peakMb"] < 400, got
    assert got["errors"] == 2 + 100_000, got  # x and y: unknown fields; each policy
    assert got["first"][2].startswith("hostile/wide.yaml:8:14: error: field 'spec.policies.0': expected a text"), got


# ---------------------------------------------------------------------------------------------- ECMA patterns
@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"^\d{12}$", "123456789012", True),
        (r"^\d{12}$", "123456789012\n", False),  # Python's $ matches before a final newline; ECMA's not
        (r"^\d{12}$", "١٢٣٤٥٦٧٨٩٠١٢", False),  # \d is ASCII in ECMA-262
        (r"^arn:aws:sns:x:\d{12}:.+$", "arn:aws:sns:x:123456789012:a\rb", False),  # . excludes \r
        (r"^arn:aws:sns:x:\d{12}:.+$", "arn:aws:sns:x:123456789012:ab", True),
        (r"^[^\s/$.?#][^\s]*$", "a$b", True),  # $ and . inside a class are literal
        (r"^[\d_-]+$", "1_2-3", True),
        (r"^[\d_-]+$", "١", False),
        (r"^https://", "https://x", True),
        (r"^([1-9]|[12][0-9]|3[01])$|^LAST$", "LAST", True),
        (r"^([1-9]|[12][0-9]|3[01])$|^LAST$", "31\n", False),
        (r"\w+\.\$", "a_1.$", True),
    ],
)
def test_patterns_match_as_in_ecma_262(pattern, text, matches):
    assert bool(ecma_regex(pattern).search(text)) is matches


def test_every_published_pattern_translates_and_agrees_with_python_on_ordinary_text():
    patterns = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for kind in SCHEMAS.by_kind.values():
        walk(kind.schema)
    assert len(patterns) >= 15
    for pattern in patterns:
        for text in ("a", "abc-1", "123456789012", "arn:aws:iam::123456789012:role/x", "https://x.y/z", "LAST"):
            assert bool(ecma_regex(pattern).search(text)) is bool(re.search(pattern, text)), (pattern, text)


def test_the_schema_set_is_the_committed_one_and_the_generators():
    assert SchemaSet.from_directory(ROOT / "schemas").by_kind.keys() == SCHEMAS.by_kind.keys()
    assert SchemaSet.from_texts(schema_gen.render_all()).by_kind.keys() == SCHEMAS.by_kind.keys()
    assert len(SCHEMAS.by_kind) == len(list((ROOT / "schemas").rglob("*.json")))
