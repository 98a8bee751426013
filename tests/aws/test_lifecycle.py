"""The life of a plan file on the moto sandbox (issue 12 §5, 13 §7): an errored plan leaves no applicable file;
applying a plan twice says "already applied" and makes no cloud call (counted by the quota proxy in front of
moto); without the first apply's journal (a CI runner) a plan whose changes are all in place is "already
applied", a genuinely stale one is still refused; and the warning about an interrupted apply stops once a re-run
has converged it (the journal records a `reconciled` entry)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from engine.journal import interrupted, read_entries
from engine.sandbox.quota_proxy import QuotaProxy
from tests.conftest import ROOT, run_cli

# The crash harness of tests/aws/test_e2e.py: the process dies after N mutating AWS calls (no journal end).
CRASH = """
import os, sys
from engine.providers.aws import client
limit = int(os.environ["CRASH_AFTER"])
seen = {"n": 0}
real = client.AwsClient._once
def once(self, op, kwargs):
    if client.is_mutating(op):
        seen["n"] += 1
        if seen["n"] > limit:
            os._exit(137)
    return real(self, op, kwargs)
client.AwsClient._once = once
from engine.cli import main
main(sys.argv[1:])
"""


def iot():
    return boto3.client("iot", region_name="eu-west-2", config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def counted(moto_server):
    """A counting front for moto (the quota proxy, with quotas no test reaches): `calls()` is every AWS call
    made through it since the last `reset()`, per operation."""
    proxy = QuotaProxy(moto_server, latency_ms=(0, 0), burst=10_000.0).start()

    class Counter:
        url = proxy.endpoint_url

        @staticmethod
        def calls() -> dict[str, int]:
            return dict(proxy.stats.calls)

        @staticmethod
        def reset() -> None:
            proxy.stats.calls.clear()

    yield Counter
    proxy.stop()


def plan_out(fleet: Path, out: Path, *extra: str):
    return run_cli("plan", str(fleet), "--detailed-exitcode", "--out", str(out), *extra)


def thing_type_edit(fleet: Path) -> None:
    """An edit no plan can carry out: a thing type's properties (immutable; replacing a type is refused)."""
    path = fleet / "aws/springpark.yaml"
    text = path.read_text()
    assert "searchableAttributes: [serial, site]" in text
    path.write_text(text.replace("searchableAttributes: [serial, site]", "searchableAttributes: [serial]"))


# ------------------------------------------------------------------------------------------ errored plans
def test_errored_plan_replaces_an_older_plan_file_with_one_apply_refuses(aws_env, fleet_dir, tmp_path):
    out = tmp_path / "plan.json"
    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0
    (fleet_dir / "aws/springpark.yaml").write_text(
        (fleet_dir / "aws/springpark.yaml")
        .read_text()
        .replace(
            "attributes: {serial: DA1275B0, site: paris}", "attributes: {serial: DA1275B0, site: paris, floor: '-2'}"
        )
    )
    assert plan_out(fleet_dir, out).exit_code == 2  # an applicable plan at that path
    assert json.loads(out.read_text())["status"] == "ok"
    thing_type_edit(fleet_dir)
    res = plan_out(fleet_dir, out)
    assert res.exit_code == 1, res.output
    assert "is marked failed and apply refuses it" in res.stderr
    data = json.loads(out.read_text())
    assert data["status"] == "errored"
    assert [b["address"] for b in data["blocked"]] == ["aws/aws-eu/ThingType/springpark"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    before = iot().describe_thing(thingName="DA1275B0")["attributes"]
    applied = run_cli("apply", str(out), "--fleet", str(fleet_dir))
    assert applied.exit_code == 1
    assert "ended in error and cannot be applied" in applied.stderr
    assert iot().describe_thing(thingName="DA1275B0")["attributes"] == before  # nothing applied
    shown = run_cli("show", str(out))
    assert shown.exit_code == 0 and "apply refuses it" in shown.stderr and "Cannot be planned" in shown.stdout


def test_a_plan_that_fails_before_planning_removes_the_older_plan_file(aws_env, fleet_dir, tmp_path):
    out = tmp_path / "plan.json"
    assert plan_out(fleet_dir, out).exit_code == 2
    path = fleet_dir / "aws/springpark.yaml"
    path.write_text(path.read_text().replace("thingType: springpark", "thingType: no-such-type", 1))
    res = plan_out(fleet_dir, out)
    assert res.exit_code == 1
    assert not out.exists(), "an older applicable plan file was left at --out"
    assert not list(tmp_path.glob(".plan.json.*")), "a temporary file was left behind"


def test_a_plan_file_with_errors_but_no_marker_is_refused(aws_env, fleet_dir, tmp_path):
    """A plan file of an older fleetctl (no `status`) whose diagnostics hold an error is refused too."""
    out = tmp_path / "plan.json"
    assert plan_out(fleet_dir, out).exit_code == 2
    data = json.loads(out.read_text())
    del data["status"]
    data["diagnostics"].append({"severity": "error", "summary": "a device secret could not be resolved"})
    out.write_text(json.dumps(data))
    res = run_cli("apply", str(out), "--fleet", str(fleet_dir))
    assert res.exit_code == 1 and "a device secret could not be resolved" in res.stderr
    assert iot().list_things()["things"] == []


# ------------------------------------------------------------------------------------------ double apply
def test_applying_a_plan_twice_says_already_applied_and_makes_no_call(
    aws_env, fleet_dir, tmp_path, counted, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", counted.url)
    out = tmp_path / "plan.json"
    assert plan_out(fleet_dir, out).exit_code == 2
    first = run_cli("apply", str(out), "--fleet", str(fleet_dir))
    assert first.exit_code == 0, first.output
    plan_id = json.loads(out.read_text())["planId"]
    end_line = next(
        n
        for n, line in enumerate(Path(aws_env["FLEETCTL_JOURNAL"]).read_text().splitlines(), 1)
        if '"apply-end"' in line
    )
    counted.reset()
    again = run_cli("apply", str(out), "--fleet", str(fleet_dir))
    assert again.exit_code == 0, again.output
    assert (
        f"Plan {plan_id} was applied at 2026-11-21T10:00:00Z by journal entry "
        f"{aws_env['FLEETCTL_JOURNAL']}:{end_line} (17 change(s) applied); nothing to do."
    ) in again.stdout
    assert "stale" not in again.output
    assert counted.calls() == {}, "an already-applied plan made AWS calls"


def test_without_the_journal_a_plan_already_in_place_is_already_applied(
    aws_env, fleet_dir, tmp_path, counted, monkeypatch
):
    """The CI case: the apply job of a re-run workflow has no journal of the first run."""
    out = tmp_path / "plan.json"
    assert plan_out(fleet_dir, out).exit_code == 2
    assert run_cli("apply", str(out), "--fleet", str(fleet_dir)).exit_code == 0
    monkeypatch.setenv("AWS_ENDPOINT_URL", counted.url)
    counted.reset()
    res = run_cli("apply", str(out), "--fleet", str(fleet_dir), "--journal", str(tmp_path / "other-runner.jsonl"))
    assert res.exit_code == 0, res.output
    assert "is already applied (the actual state already matches this plan: 17 change(s) in place)" in res.stdout
    assert "stale" not in res.output
    from engine.providers.aws.client import is_mutating

    assert [op for op in counted.calls() if is_mutating(op)] == [], counted.calls()


def test_without_the_journal_a_genuinely_stale_plan_is_still_refused(aws_env, fleet_dir, tmp_path):
    out = tmp_path / "plan.json"
    assert plan_out(fleet_dir, out).exit_code == 2
    assert run_cli("apply", str(out), "--fleet", str(fleet_dir)).exit_code == 0
    iot().update_thing(thingName="DA1275B1", attributePayload={"attributes": {"site": "lyon"}, "merge": True})
    res = run_cli("apply", str(out), "--fleet", str(fleet_dir), "--journal", str(tmp_path / "other-runner.jsonl"))
    assert res.exit_code == 1
    assert "plan is stale, re-run plan" in res.stderr and "aws/aws-eu/Thing/DA1275B1" in res.stderr
    assert "16 of them already match this plan" in res.stderr
    assert iot().describe_thing(thingName="DA1275B1")["attributes"]["site"] == "lyon"


# ------------------------------------------------------------------------------------------ interrupted applies
def _crash(fleet: Path, after: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, "apply", str(fleet), "--auto-approve"],
        env={**os.environ, "CRASH_AFTER": str(after)},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 137, proc.stderr


def test_warning_of_a_killed_apply_stops_once_a_rerun_converged_it(aws_env, fleet_dir):
    journal = Path(aws_env["FLEETCTL_JOURNAL"])
    _crash(fleet_dir, 11)
    assert interrupted(journal)
    warned = run_cli("plan", str(fleet_dir))
    assert "was interrupted while it was applying" in warned.stdout
    rerun = run_cli("apply", str(fleet_dir), "--auto-approve")
    assert rerun.exit_code == 0, rerun.output
    assert "of an interrupted apply as converged" in rerun.stdout
    assert interrupted(journal) == []
    entries = [e for e in read_entries(journal) if e["event"] == "reconciled"]
    assert entries and all(e["addresses"] and e["reconciles"] != e["planId"] for e in entries)
    for command in (["plan", str(fleet_dir)], ["drift", str(fleet_dir)]):
        res = run_cli(*command)
        assert res.exit_code == 0, res.output
        assert "interrupted" not in res.output


def test_a_dangling_begin_the_state_already_matches_is_reconciled_by_an_apply_without_changes(aws_env, fleet_dir):
    """The kill came after the cloud call and before the `success` entry: a re-run's plan has nothing to change
    there; that apply (no changes at all) records it converged."""
    journal = Path(aws_env["FLEETCTL_JOURNAL"])
    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0
    with journal.open("a") as fh:
        fh.write(
            json.dumps(
                {
                    "ts": "2026-11-21T09:00:00Z",
                    "event": "begin",
                    "planId": "p-killed",
                    "address": "aws/aws-eu/Thing/DA1275B0",
                    "action": "update",
                }
            )
            + "\n"
        )
    warned = run_cli("plan", str(fleet_dir), "--detailed-exitcode")
    assert warned.exit_code == 0 and "plan p-killed) was interrupted" in warned.stdout
    res = run_cli("apply", str(fleet_dir), "--auto-approve")
    assert res.exit_code == 0, res.output
    assert "Recorded 1 change(s) of an interrupted apply as converged" in res.stdout
    (entry,) = [e for e in read_entries(journal) if e["event"] == "reconciled"]
    assert entry["reconciles"] == "p-killed" and entry["addresses"] == ["aws/aws-eu/Thing/DA1275B0"]
    assert "interrupted" not in run_cli("plan", str(fleet_dir)).output
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
