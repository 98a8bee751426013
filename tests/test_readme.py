"""Every README snippet is exercised: the quick start runs, the walkthrough runs, the manifests validate."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from engine.manifest.fleet import load_fleet
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def section(title: str) -> str:
    return README.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def bash(script: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{ROOT / '.venv/bin'}:{os.environ['PATH']}"}
    env.pop("AWS_ENDPOINT_URL", None)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_quick_start_is_two_commands_and_ci_runs_the_same_test_command():
    quick = re.findall(r"```sh\n(.*?)```", section("Quick start"), flags=re.S)[0]
    commands = [line.split("#")[0].strip() for line in quick.splitlines() if line.strip()]
    assert commands == ["bash scripts/demo.sh", "bash .ci/run"]
    test_command = re.search(r"run the tests: (.+)$", quick, flags=re.M).group(1).strip()
    assert test_command in (ROOT / ".ci/run").read_text()


def test_install_section_installs_what_the_quick_start_needs(tmp_path):
    """The README's install lines in a fresh venv: activated, the sandbox extra in, `sandbox up` works."""
    script = re.findall(r"```sh\n(.*?)```", section("Install"), flags=re.S)[0]
    assert "source .venv/bin/activate" in script and "'.[sandbox]'" in script
    work = tmp_path / "repo"
    shutil.copytree(
        ROOT,
        work,
        ignore=shutil.ignore_patterns(".venv", ".git", "*.egg-info", "__pycache__", ".fleetctl", "build", "out"),
    )
    res = bash(script + "\ncommand -v fleetctl\n", cwd=work, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == str(work / ".venv" / "bin" / "fleetctl")


def test_demo_script_runs_the_main_job(tmp_path):
    """scripts/demo.sh: sandbox up → validate → plan (changes) → apply → plan (no changes) → sandbox down."""
    res = bash(f"bash {ROOT / 'scripts/demo.sh'}", cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "demo: OK" in res.stdout
    assert "No changes. The actual state matches the manifests." in res.stdout


def test_using_it_walkthrough_runs_against_the_sandbox(tmp_path):
    script = re.findall(r"```sh\n(.*?)```", section("Using it"), flags=re.S)[0]
    shutil.copytree(ROOT / "fleet", tmp_path / "fleet")
    try:
        res = bash(f"export FLEETCTL_JOURNAL={tmp_path}/journal.jsonl\n" + script, cwd=tmp_path)
    finally:  # a failing step must not leave the emulators running
        bash("fleetctl sandbox down", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "No changes" not in res.stdout.split("Apply")[0]  # the first plan had changes
    assert "In sync" in res.stdout
    assert list((tmp_path / "out").rglob("*.json")), "device artifacts were written"
    assert '"version": "2.1.0"' in (tmp_path / "lint.sarif").read_text()
    secret = "demo-only"
    for path in [tmp_path / "devices.json", tmp_path / "journal.json", tmp_path / "journal.jsonl"]:
        assert secret not in path.read_text()
    assert secret not in res.stdout + res.stderr
    assert (tmp_path / "journal.json").read_text().strip()


def test_manifest_snippets_validate(tmp_path):
    snippets = blocks("yaml")
    assert snippets
    shutil.copytree(ROOT / "fleet/aws/certs", tmp_path / "fleet/aws/certs")
    for i, text in enumerate(snippets):
        (tmp_path / f"snippet{i}.yaml").write_text(text)
    fleet = load_fleet(tmp_path, env={})
    assert not fleet.diagnostics.has_errors, [d.render() for d in fleet.diagnostics]


def test_development_commands_exist():
    dev = re.findall(r"```sh\n(.*?)```", section("Development"), flags=re.S)[0]
    assert "bash .ci/run" in dev and (ROOT / "tests/aws").is_dir()
    assert "python -m engine.schema_gen schemas" in dev and (ROOT / "engine/schema_gen.py").exists()


def test_benchmark_commands_exist_with_the_options_used():
    """The Performance section's commands: each script exists and accepts every option the README passes."""
    import shlex

    block = re.findall(r"```sh\n(.*?)```", section("Performance"), flags=re.S)[0]
    for line in filter(None, (x.strip() for x in block.splitlines())):
        argv = shlex.split(line)
        assert argv[0] == ".venv/bin/python" and (ROOT / argv[1]).is_file(), line
        helptext = subprocess.run(
            [str(ROOT / argv[0]), str(ROOT / argv[1]), *argv[2:3], "--help"]
            if not argv[2].startswith("-")
            else [str(ROOT / argv[0]), str(ROOT / argv[1]), "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert helptext.returncode == 0, helptext.stderr
        for opt in (a for a in argv[2:] if a.startswith("--")):
            assert opt in helptext.stdout, f"{argv[1]} has no option {opt}"
