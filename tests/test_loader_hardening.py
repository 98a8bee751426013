"""Hostile and broken manifest input (issue 13 points 3 and 4): the input limits of engine/manifest/limits.py in
both loader paths, and a located, plain error for every kind of bad input (never an internal error)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.diagnostics import Source
from engine.manifest.fleet import load_fleet
from engine.manifest.limits import DEFAULT, LIMITS, Limits, describe
from engine.manifest.loader import load_path, parse_text
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.filterwarnings("ignore::Warning")

TARGET = "apiVersion: fleetctl.io/v1\nkind: Target\nmetadata: {name: aws-eu}\nspec:\n  aws: {region: eu-west-2}\n"
# the 700-byte bomb: 7 levels of 10 aliases each, 10^7 nodes when expanded
BOMB = (
    "\n".join(
        [
            "apiVersion: fleetctl.io/v1",
            "kind: Target",
            "metadata: {name: lol}",
            "spec:",
            "  lol1: &lol1 [" + ", ".join(['"lolololol"'] * 10) + "]",
        ]
        + [f"  lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]" for i in range(2, 8)]
    )
    + "\n"
)


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return root


def errors(root: Path, env: dict[str, str] | None = None) -> list:
    return load_fleet(root, env or {}).diagnostics.errors


def both(text: str, limits: Limits) -> list[tuple]:
    """The diagnostics of `text` on the libyaml and the ruamel path: they must be the same."""
    out = []
    for fast in (True, False):
        docs, diags = parse_text(text, "x.yaml", fast=fast, limits=limits)
        out.append(([d.data for d in docs], [(d.summary, d.detail, d.source, d.field) for d in diags]))
    assert out[0] == out[1]
    return out[0][1]


# ---------------------------------------------------------------------------------------------- 13.3 limits
def test_the_alias_bomb_fails_fast_and_small_in_a_fresh_process(tmp_path):
    """Measured in a child process (its own peak RSS): < 1 s and < 100 MB, on either parser."""
    assert 600 <= len(BOMB) <= 800, len(BOMB)
    write(tmp_path, {"bomb.yaml": BOMB})
    script = textwrap.dedent(f"""
        import json, resource, time, sys
        from pathlib import Path
        from engine.manifest.fleet import load_fleet
        from engine.manifest.loader import parse_text
        started = time.perf_counter()
        fleet = load_fleet(Path({str(tmp_path)!r}), {{}})
        load = time.perf_counter() - started
        text = Path({str(tmp_path / "bomb.yaml")!r}).read_text()
        started = time.perf_counter()
        _, ruamel = parse_text(text, "bomb.yaml", fast=False)
        slow = time.perf_counter() - started
        hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        print(json.dumps({{"load": load, "ruamel": slow, "peakMb": hwm / 1024,
                          "errors": [d.render() for d in fleet.diagnostics.errors],
                          "ruamelErrors": [d.render() for d in ruamel]}}))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["load"] < 1.0 and got["ruamel"] < 1.0 and got["peakMb"] < 100, got
    assert len(got["errors"]) == 1 and got["errors"][0].endswith("/" + got["ruamelErrors"][0]), got
    assert got["ruamelErrors"][0].startswith("bomb.yaml:10:23: ")
    assert "FLEETCTL_MAX_ALIAS_NODES=250000" in got["errors"][0]


def test_aliases_within_the_limit_still_expand_and_merge():
    text = "a: &a {x: 1, y: [p, q]}\nb: *a\nc: {<<: *a, z: 2}\n"
    assert both(text, DEFAULT) == []
    docs, _ = parse_text(text, "x.yaml")
    assert docs[0].data == {
        "a": {"x": 1, "y": ["p", "q"]},
        "b": {"x": 1, "y": ["p", "q"]},
        "c": {"z": 2, "x": 1, "y": ["p", "q"]},
    }


def test_alias_nodes_are_counted_per_file_at_the_crossing_alias():
    text = "a: &a [1, 2, 3]\nb: [*a, *a]\n---\nc: &c [1, 2, 3]\nd: *c\n"  # each alias adds 4 nodes
    assert both(text, Limits(max_alias_nodes=12)) == []
    ((summary, detail, source, _),) = both(text, Limits(max_alias_nodes=11))
    assert source == Source("x.yaml", 5, 4) and "FLEETCTL_MAX_ALIAS_NODES=11" in summary and "(12)" in summary
    assert "raise it for the run with FLEETCTL_MAX_ALIAS_NODES=<n>" in detail


def test_a_recursive_alias_is_a_located_error():
    ((summary, _, source, _),) = both("a: &x [1, *x]\n", DEFAULT)
    assert "recursive" in summary and source == Source("x.yaml", 1, 11)


@pytest.mark.parametrize(
    "text, line",
    [
        ("a: " + "[" * 70 + "]" * 70 + "\n", 1),
        ("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 70)) + "  " * 70 + "v: 1\n", 64),
        ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", 1),  # libyaml would crash the process, ruamel recurse
        ("- " * 5000 + "x\n", 1),
    ],
)
def test_nesting_deeper_than_the_limit_is_located_on_both_paths(text, line):
    ((summary, detail, source, _),) = both(text, DEFAULT)
    assert "FLEETCTL_MAX_DEPTH=64" in summary and source.file == "x.yaml" and source.line == line, (summary, source)


def test_depth_through_aliases_counts_the_expanded_nesting():
    deep = "[" * 30 + "]" * 30
    text = f"a: &a {deep}\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"
    ((summary, _, source, _),) = both(text, DEFAULT)
    assert "expanded, this alias nests the document" in summary and source.line == 2


def test_documents_per_file_and_in_all(tmp_path):
    text = "".join(f"---\nn: {i}\n" for i in range(6))
    ((summary, _, source, _),) = both(text, Limits(max_documents_per_file=5))
    assert "FLEETCTL_MAX_DOCUMENTS_PER_FILE=5" in summary and source == Source("x.yaml", 12, 1)
    write(
        tmp_path,
        {"a.yaml": "".join(f"---\nn: {i}\n" for i in range(3)), "b.yaml": "".join(f"---\nn: {i}\n" for i in range(3))},
    )
    docs, diags = load_path(tmp_path, Limits(max_documents=4))
    assert len(docs) == 4 and [(d.summary.split(" exceeds")[0], str(d.source)) for d in diags] == [
        ("document 5 of the fleet", f"{tmp_path.name}/b.yaml:4:1")
    ]
    assert "FLEETCTL_MAX_DOCUMENTS=4" in diags[0].summary


def test_file_size_limit_is_checked_before_reading(tmp_path):
    write(tmp_path, {"big.yaml": "a: " + "x" * 5000 + "\n"})
    (d,) = errors(tmp_path, {"FLEETCTL_MAX_FILE_BYTES": "1000"})
    assert d.source == Source(f"{tmp_path.name}/big.yaml", 1, 1)
    assert "5,004 bytes" in d.summary and "FLEETCTL_MAX_FILE_BYTES=1000" in d.summary


def test_generator_rows_csv_and_range(tmp_path):
    thingset = TARGET + textwrap.dedent("""\
        ---
        apiVersion: fleetctl.io/v1
        kind: ThingSet
        metadata: {name: s}
        spec:
          csv: {file: devices.csv}
          template:
            - {apiVersion: aws.fleetctl.io/v1, kind: Thing, metadata: {name: "t-${id}", target: aws-eu}}
        """)
    write(tmp_path, {"f.yaml": thingset, "devices.csv": "id\n" + "".join(f"d{i}\n" for i in range(5))})
    assert not errors(tmp_path, {"FLEETCTL_MAX_ROWS": "5"})
    (d,) = errors(tmp_path, {"FLEETCTL_MAX_ROWS": "4"})
    assert d.source == Source(f"{tmp_path.name}/devices.csv", 6, 1) and "FLEETCTL_MAX_ROWS=4" in d.summary
    (d,) = errors(tmp_path, {"FLEETCTL_MAX_DOCUMENTS": "5"})  # 2 written + 5 generated
    assert "FLEETCTL_MAX_DOCUMENTS=5" in d.summary and d.field == "spec.template" and d.source.line == 12
    write(tmp_path, {"f.yaml": thingset.replace("csv: {file: devices.csv}", "range: {count: 100000000000}")})
    (d,) = errors(tmp_path)
    assert "a range of 100,000,000,000 rows exceeds the limit FLEETCTL_MAX_ROWS=1000000" in d.summary
    assert d.source.line == 11 and d.field == "spec.range.count"


def test_a_malformed_limit_variable_is_an_error_naming_it(tmp_path):
    write(tmp_path, {"t.yaml": TARGET})
    (d,) = errors(tmp_path, {"FLEETCTL_MAX_DEPTH": "deep"})
    assert d.summary == "FLEETCTL_MAX_DEPTH must be a positive whole number, got 'deep'"


def test_the_defaults_pass_a_100k_device_fleet():
    """The W1 shapes of docs/performance.md: 100 files of 1,000 documents (230 KB), or one 23 MB file of
    100,000; a ThingSet of 100,000 CSV rows; a plan of both (certificates too) is ~300,000 documents."""
    assert DEFAULT.max_documents_per_file >= 100_000 and DEFAULT.max_documents >= 300_000
    assert DEFAULT.max_file_bytes >= 23 * 1024 * 1024 and DEFAULT.max_rows >= 100_000
    assert DEFAULT.max_depth >= 16 and DEFAULT.max_alias_nodes >= 100_000
    table = describe()
    assert all(f"`{limit.env}`" in table for limit in LIMITS)


# ---------------------------------------------------------------------------------------------- 13.4 located
def test_nul_and_control_characters_are_located(tmp_path):
    write(tmp_path, {"t.yaml": TARGET.replace("name: aws-eu", "name: aws\x00eu")})
    (d,) = errors(tmp_path)
    assert (
        str(d.source) == f"{tmp_path.name}/t.yaml:3:21"
        and d.summary == "character U+0000 (NUL) is not allowed in YAML text"
    )
    res = run_cli("validate", str(tmp_path))
    assert res.exit_code == 1 and "internal error" not in res.output and "t.yaml:3:21: error: character" in res.stderr
    write(tmp_path, {"t.yaml": TARGET.replace("region: eu-west-2", "region: eu-west-2\x1b")})
    (d,) = errors(tmp_path)
    assert (d.source.line, d.source.col) == (5, 26) and "U+001B (ESC)" in d.summary


def test_invalid_utf8_by_line_and_column_in_characters(tmp_path):
    write(tmp_path, {"t.yaml": TARGET.encode().replace(b"name: aws-eu", b"name: \xc3\xa9t\xc3\xa9-\xff")})
    (d,) = errors(tmp_path)
    assert (d.source.line, d.source.col) == (3, 22) and d.summary == "invalid UTF-8: byte 0xFF (invalid start byte)"
    write(tmp_path, {"t.yaml": TARGET.encode("utf-16")})
    (d,) = errors(tmp_path)
    assert d.summary == "the file is UTF-16 text, not UTF-8"


def test_csv_encoding_and_nul_are_located(tmp_path):
    fleet = TARGET + (
        "---\napiVersion: fleetctl.io/v1\nkind: ThingSet\nmetadata: {name: s}\nspec:\n"
        "  csv: {file: d.csv}\n  template: [{apiVersion: aws.fleetctl.io/v1, kind: Thing, "
        "metadata: {name: 't-${id}', target: aws-eu}}]\n"
    )
    write(tmp_path, {"f.yaml": fleet, "d.csv": b"id,site\nd1,caf\xe9\n"})
    (d,) = errors(tmp_path)
    assert str(d.source) == f"{tmp_path.name}/d.csv:2:7" and d.summary.startswith("invalid UTF-8")
    write(tmp_path, {"d.csv": "id,site\nd1,a\x00b\n"})
    (d,) = errors(tmp_path)
    assert str(d.source) == f"{tmp_path.name}/d.csv:2:5" and "NUL" in d.summary


def test_a_wrongly_typed_reference_is_a_located_validation_error(tmp_path):
    write(
        tmp_path,
        {
            "d.yaml": textwrap.dedent("""\
        apiVersion: device.fleetctl.io/v1
        kind: DeviceConfig
        metadata: {name: esp32-sensors}
        spec:
          model: esp32-nvs
          values:
            ca: {file: {}}
          devices:
            24-0A-C4-5F-12-9C:
              values:
                key: {env: [1]}
        """)
        },
    )
    got = sorted((d.source.line, d.source.col, d.field, d.summary) for d in errors(tmp_path))
    assert got == [
        (7, 5, "spec.values.ca", "the file reference's 'file' must be a non-empty string, got a dict"),
        (
            11,
            9,
            "spec.devices.24-0A-C4-5F-12-9C.values.key",
            "the env reference's 'env' must be a non-empty string, got a list",
        ),
    ]
    res = run_cli("validate", str(tmp_path))
    assert res.exit_code == 1 and "internal error" not in res.output


def test_syntax_errors_keep_the_problem_and_its_context():
    ((summary, detail, source, _),) = both("a: 1\nb: [1, 2\nc: 3\n", DEFAULT)
    assert summary == "invalid YAML: expected ',' or ']', but got ':'" and source == Source("x.yaml", 3, 2)
    assert detail == "while parsing a flow sequence at line 2, column 4"


def test_duplicate_keys_name_both_lines_and_the_field_but_not_the_values():
    text = "kind: Target\nmetadata: {name: t}\nspec:\n  aws:\n    secret: hunter2\n    secret: hunter3\n"
    ((summary, detail, source, field),) = both(text, DEFAULT)
    assert summary == "duplicate key in mapping" and source == Source("x.yaml", 6, 5) and field == "spec.aws.secret"
    assert detail == (
        'key "secret" is written at line 5, column 5 and again at line 6, column 5 (in the Target '
        "'t'); each key may appear once per mapping"
    )
    assert "hunter" not in detail


@pytest.mark.parametrize("tag", ["!!python/object:os.system", "!custom", "!!binary", "!!set"])
def test_unsupported_tags_are_located_errors(tag):
    value = "{x: null}" if tag == "!!set" else "aGVsbG8=" if tag == "!!binary" else "{x: 1}"
    docs, diags = parse_text(f"kind: Target\nspec:\n  aws: {tag} {value}\n", "x.yaml")
    assert [(d.summary, d.source, d.field) for d in diags] == [
        (f"unsupported YAML tag '{tag}'", Source("x.yaml", 3, 3), "spec.aws")
    ]
    docs, diags = parse_text("a: !!str 12\nb: !!int '7'\n", "x.yaml")
    assert not diags and docs[0].data == {"a": "12", "b": 7}


def test_values_ruamel_cannot_construct_are_located():
    ((summary, _, source, _),) = both("a: 1\nb: 2024-13-45\n", DEFAULT)
    assert source == Source("x.yaml", 2, 4) and summary.startswith("invalid YAML: cannot read this value")


def test_a_scalar_document_is_located(tmp_path):
    write(tmp_path, {"t.yaml": TARGET + "---\njust text\n"})
    (d,) = errors(tmp_path)
    assert d.source == Source(f"{tmp_path.name}/t.yaml", 7, 1)


def test_lint_on_broken_yaml_prints_the_errors_and_exits_1(tmp_path):
    write(tmp_path, {"t.yaml": TARGET, "broken.yaml": "kind: [unclosed\n"})
    res = run_cli("lint", str(tmp_path))
    assert res.exit_code == 1
    assert "No findings" not in res.stdout and "1 error(s) in " in res.stdout and "was not linted" in res.stdout
    assert f"{tmp_path.name}/broken.yaml:2:1: error: invalid YAML" in res.stderr


@pytest.mark.parametrize("where", ["target", "env"])
def test_an_unknown_aws_profile_is_a_plain_message_naming_the_setting(tmp_path, where):
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = eu-west-1\n[profile dev]\nregion = eu-west-2\n")
    target = TARGET.replace("region: eu-west-2", "region: eu-west-2, profile: ghost") if where == "target" else TARGET
    fleet = write(
        tmp_path / "fleet",
        {
            "t.yaml": target + "---\napiVersion: aws.fleetctl.io/v1\nkind: ThingType\n"
            "metadata: {name: t, target: aws-eu}\nspec: {}\n"
        },
    )
    env = {
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "FLEETCTL_JOURNAL": str(tmp_path / "j.jsonl"),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        **({"AWS_PROFILE": "ghost"} if where == "env" else {}),
    }
    res = run_cli("plan", str(fleet), env=env)
    setting = "the Target's spec.aws.profile" if where == "target" else "the AWS_PROFILE environment variable"
    assert res.exit_code == 1 and "internal error" not in res.output
    assert f"AWS profile 'ghost' (from {setting}) is not configured; configured profiles: default, dev" in res.stderr, (
        res.output
    )


def test_internal_error_is_reserved_for_bugs_and_asks_for_a_report(tmp_path, monkeypatch):
    from engine.manifest import fleet as fleet_module

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(fleet_module, "load_fleet", broken)
    res = run_cli("validate", str(tmp_path))
    assert res.exit_code == 1
    assert "internal error (ZeroDivisionError): a bug" in res.stderr
    assert "This is a bug in fleetctl" in res.stderr and "FLEETCTL_DEBUG=1" in res.stderr and "/issues" in res.stderr


def test_the_limits_doc_lists_every_limit_as_declared():
    doc = (ROOT / "docs" / "manifest-limits.md").read_text(encoding="utf-8")
    assert describe() in doc


def _shard(n: int = 1000) -> list[str]:
    return [
        f"apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {{name: esp32-{i:012X}, target: aws-eu}}\n"
        f'spec:\n  thingType: esp32\n  attributes: {{mac: "24:0A:C4:{i:06X}", site: site-{i % 20}}}\n'
        for i in range(n)
    ]


def test_a_large_file_needing_ruamel_sends_only_its_odd_documents_there():
    """One tab (or tag) in a file of 1,000 things: the others stay on libyaml, the result is ruamel's own."""
    import time

    docs = _shard()
    docs[500] = docs[500].replace("thingType: esp32", 'thingType: "esp\t32"')
    docs[700] = docs[700].replace("thingType: esp32", "thingType: !!str esp32")
    text = "---\n".join(docs)
    started = time.perf_counter()
    fast = parse_text(text, "x.yaml")
    fast_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ref = parse_text(text, "x.yaml", fast=False)
    ref_seconds = time.perf_counter() - started
    assert [(d.index, d.data, d.positions) for d in fast[0]] == [(d.index, d.data, d.positions) for d in ref[0]]
    assert fast[1] == ref[1] == [] and len(fast[0]) == 1000 and fast[0][500].data["spec"]["thingType"] == "esp\t32"
    assert fast_seconds * 3 < ref_seconds, (fast_seconds, ref_seconds)
    docs[900] = docs[900].replace("  thingType: esp32\n", "  thingType: esp32\n  thingType: esp33\n")
    text = "---\n".join(docs)
    fast, ref = parse_text(text, "x.yaml"), parse_text(text, "x.yaml", fast=False)
    assert [(d.index, d.data) for d in fast[0]] == [(d.index, d.data) for d in ref[0]] and len(fast[0]) == 900
    assert fast[1] == ref[1] and fast[1][0].source.line == 900 * 7 + 6 and fast[1][0].field == "spec.thingType"


def test_a_key_written_with_brackets_is_reported_not_a_crash(tmp_path):
    """Found by the fuzzer: pydantic's location names its validators `function-after[...]`; a user's key with a
    `[` was dropped from the location with them (an IndexError, an internal error)."""
    write(
        tmp_path,
        {
            "t.yaml": TARGET.replace("apiVersion:", "apiVer[ion:").replace(
                "region: eu-west-2", "region: eu-west-2, 'x[1]': 2"
            )
        },
    )
    got = sorted((d.source.line, d.field, d.summary) for d in errors(tmp_path))
    assert got == [
        (1, "apiVer[ion", "unknown field 'apiVer[ion' (did you mean 'apiVersion'?)"),
        (1, "apiVersion", "required field 'apiVersion' is missing"),
    ]
    write(tmp_path, {"t.yaml": TARGET.replace("region: eu-west-2", "region: eu-west-2, 'x[1]': 2")})
    (d,) = errors(tmp_path)
    assert (d.source.line, d.field, d.summary.split(" (")[0]) == (5, "spec.aws.x[1]", "unknown field 'x[1]'")


def test_deep_nesting_is_refused_in_milliseconds():
    """Found by the fuzzer: 5,000 open brackets took ruamel's scanner 0.6-3 s (quadratic); libyaml's events find
    the node past the limit in a millisecond (its scanner reads at most 900 openers of the text)."""
    import time

    for text in [
        "a: " + "[" * 5000 + "]" * 5000 + "\n",
        "a: " + "{b: " * 5000 + "}" * 5000 + "\n",
        "- " * 20000 + "x\n",
    ]:
        started = time.perf_counter()
        _, diags = parse_text(text, "x.yaml")
        assert time.perf_counter() - started < 0.2 and len(diags) == 1 and "FLEETCTL_MAX_DEPTH" in diags[0].summary
