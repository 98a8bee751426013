"""Progress off a terminal (a CI log): an apply of more than 1,000 changes against the moto sandbox reports lines
on stderr and a final line, and stdout carries exactly what it carried before; the plan's reads do the same,
with `--format json` on stdout still parseable."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

from tests.conftest import run_cli
from tests.scale.conftest import THINGSET, esp32_macs

LINE = re.compile(
    r"^apply: ([\d,]+)/([\d,]+) changes \((\d+)%\), [\d.,]+/(?:s|min), (\d+) failed"
    r"(?:, (?:about .+|under 1 s) left)?$"
)
FINAL = re.compile(r"^apply: ([\d,]+)/([\d,]+) changes \(100%\), [\d.,]+/(?:s|min), 0 failed, done in .+$")


def test_a_large_apply_reports_progress_on_stderr(aws_env, tmp_path, write):
    root = write(THINGSET, ["mac,site", *[f"{m},paris" for m in esp32_macs(1_000)]])
    planfile = str(tmp_path / "plan.json")
    planned = run_cli("plan", str(root), "--out", planfile)
    assert planned.exit_code == 0, planned.output
    total = len(json.loads(Path(planfile).read_text(encoding="utf-8"))["changes"])
    assert total >= 1_000
    # every 0 s, i.e. at every 5 % of the changes (the 10 s rule is tested with a fake clock in tests/test_progress.py)
    env = {"FLEETCTL_PROGRESS_SECONDS": "0", "FLEETCTL_WORKERS": "16"}
    applied = run_cli("apply", planfile, "--fleet", str(root), env=env)
    assert applied.exit_code == 0, applied.output
    lines = [line for line in applied.stderr.splitlines() if line.startswith("apply: ")]
    progress, final = lines[:-1], lines[-1]
    assert 15 <= len(progress) <= 20, lines
    assert all(LINE.match(line) for line in progress), progress
    done = [int(LINE.match(line).group(1).replace(",", "")) for line in progress]
    assert done == sorted(done) and all(b - a >= 0.05 * total for a, b in itertools.pairwise(done))
    assert all(LINE.match(line).group(2) == f"{total:,}" for line in progress)
    assert FINAL.match(final) and final.startswith(f"apply: {total:,}/{total:,} changes (100%)"), final
    # stdout: the report as before, no progress line in it
    assert "apply: " not in applied.stdout
    assert (
        applied.stdout.strip()
        .splitlines()[-1]
        .startswith(
            f"Apply {json.loads(Path(planfile).read_text())['planId']}: {total} applied, 0 failed, 0 skipped in "
        )
    )
    # the re-plan reads 1,000 things: read lines on stderr, and stdout is plain JSON
    replanned = run_cli("plan", str(root), "--format", "json", env=env)
    assert replanned.exit_code == 0, replanned.output
    assert json.loads(replanned.stdout)["changes"] == []
    reads = [line for line in replanned.stderr.splitlines() if line.startswith("read aws-eu: ")]
    assert reads and reads[-1].startswith("read aws-eu: 1,000/1,000 things (100%)") and "done in" in reads[-1], reads
    # without the override, a read that ends within 10 s says nothing; apply's final line is always there
    quiet = run_cli("plan", str(root))
    assert quiet.exit_code == 0 and "read aws-eu" not in quiet.stderr
