"""Plan files and device artifacts of the example fleet with its dumps (issue 12 §5, 13 §6): a plan whose device
secret cannot be resolved leaves no applicable plan file; apply says which artifacts it wrote hold secrets, and
those are 0600 whatever the umask."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.conftest import run_cli

from .provider_support import workspace


def test_a_device_secret_that_cannot_be_resolved_leaves_no_applicable_plan_file(aws_env, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    out = ws.root / "plan.json"
    assert ws.plan("--out", str(out)).exit_code == 0  # an applicable plan at that path first
    env = {k: v for k, v in ws.env.items() if k != "FLEETCTL_WIFI_PSK"}  # the Wi-Fi PSK is not set
    res = run_cli("plan", str(ws.fleet), "--dumps", str(ws.dumps), "--out", str(out), env=env)
    assert res.exit_code == 1, res.output
    assert "FLEETCTL_WIFI_PSK is not set" in res.output
    assert json.loads(out.read_text())["status"] == "errored"  # the older applicable file is replaced
    applied = ws.apply(out)
    assert applied.exit_code == 1
    assert "ended in error and cannot be applied" in applied.stderr
    assert "Apply " not in applied.stdout and not ws.artifacts.exists()  # nothing was applied or written


def test_apply_names_the_artifacts_that_hold_secrets_and_writes_them_0600(aws_env, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    ws.plan_json()
    old = os.umask(0o000)  # the loosest umask: modes must not depend on it
    try:
        applied = ws.apply(ws.root / "plan.json")
    finally:
        os.umask(old)
    assert applied.exit_code == 0, applied.output
    named = {line.split(" holds secrets")[0] for line in applied.stdout.splitlines() if " holds secrets" in line}
    assert all(
        line.endswith("holds secrets (mode 0600): push it to the device and delete it.")
        for line in applied.stdout.splitlines()
        if " holds secrets" in line
    )
    written = {Path(p).resolve() for p in named}
    secret = {p.resolve() for p in ws.artifacts.rglob("*") if p.is_file() and stat.S_IMODE(p.stat().st_mode) == 0o600}
    assert written == secret and written, (named, secret)
    assert {p.name for p in written} >= {"DA1275B0.json", "D4-CA-6E-0A-1B-2C.at", "24-0A-C4-5F-12-9C.csv"}
    for path in ws.artifacts.rglob("*"):
        if path.is_file() and path.resolve() not in written:
            assert stat.S_IMODE(path.stat().st_mode) in (0o644, 0o755), path
    for private in (ws.journal, ws.state, ws.root / "plan.json"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
