"""docs/performance.md is exercised: its ThingSet and CSV load as written, and every benchmark command is one
the benchmark's own parser accepts."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys

from tests.conftest import ROOT, run_cli
from tests.scale.conftest import SHARED, TARGET

DOC = ROOT / "docs" / "performance.md"
SNIPPET = re.compile(r"<!-- snippet: ([a-z0-9-]+) -->\n```(\w+)\n(.*?)\n```", re.S)


def snippets() -> dict[str, tuple[str, str]]:
    return {m.group(1): (m.group(2), m.group(3)) for m in SNIPPET.finditer(DOC.read_text())}


def test_every_fenced_block_is_a_known_snippet():
    text = DOC.read_text()
    assert text.count("```") == 2 * len(SNIPPET.findall(text))
    assert set(snippets()) == {
        "thingset",
        "devices-csv",
        "bench-load",
        "bench-plan",
        "bench-apply",
        "bench-apply-certs",
        "bench-script",
        "bench-bulkreg",
        "bench-bulkreg-certs",
        "bulk-target",
        "bench-azure-paths",
    }


def test_the_thingset_snippet_validates_and_names_its_rows(tmp_path):
    from engine.sandbox import certs

    root = tmp_path / "fleet"
    (root / "certs").mkdir(parents=True)
    (root / "targets.yaml").write_text(TARGET)
    (root / "shared.yaml").write_text(SHARED)
    (root / "esp32.yaml").write_text(snippets()["thingset"][1] + "\n")
    (root / "devices.csv").write_text(snippets()["devices-csv"][1] + "\n")
    ca = certs.make_ca("doc CA")
    for compact in ("240AC45F129C", "240AC45F129D"):
        (root / "certs" / f"{compact}.pem").write_text(certs.issue(compact, ca).pem)
    result = run_cli("validate", str(root))
    assert result.exit_code == 0, result.output
    assert "7 resource(s) valid" in result.stdout  # 2 things, 2 certificates, type, policy, group
    (root / "certs" / "240AC45F129D.pem").unlink()
    broken = run_cli("validate", str(root))
    assert broken.exit_code == 1 and "fleet/devices.csv:3, template fleet/esp32.yaml:" in broken.stderr


BENCHMARKS = ("bench_scale.py", "bench_bulkreg.py", "bench_azure.py")  # the benchmarks docs/performance.md runs


def _benchmark(script: str):
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), ROOT / "benchmarks" / script)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, bench)  # dataclasses look their module up while it loads
    spec.loader.exec_module(bench)
    return bench


def test_the_bulk_registration_target_validates(tmp_path):
    root = tmp_path / "fleet"
    root.mkdir()
    (root / "targets.yaml").write_text(snippets()["bulk-target"][1] + "\n")
    (root / "shared.yaml").write_text(SHARED)
    result = run_cli("validate", str(root))
    assert result.exit_code == 0, result.output
    (root / "targets.yaml").write_text(snippets()["bulk-target"][1].replace("threshold: 1000", "threshold: 0") + "\n")
    assert run_cli("validate", str(root)).exit_code == 1


def test_benchmark_commands_parse():
    parsers = {script: _benchmark(script).build_parser() for script in BENCHMARKS}
    for name, (lang, body) in snippets().items():
        if name.startswith("bench-"):
            argv = shlex.split(body)
            assert argv[0] == ".venv/bin/python" and lang == "sh", body
            script = argv[1].removeprefix("benchmarks/")
            assert script in parsers, f"{name}: {argv[1]} is not a benchmark this test knows"
            args = parsers[script].parse_args(argv[2:])
            assert args.workload in name
