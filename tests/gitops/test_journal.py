"""fleetctl journal after a real apply against moto: from an address or a cloud request id back to the plan,
the commit and the pull request (found in git, or recorded by the apply workflow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.clock import clock_from_env
from engine.journal import Journal, read_entries
from tests.conftest import FLEET, run_cli
from tests.gitops.test_history import Repo


@pytest.fixture
def merged(tmp_path: Path) -> tuple[Repo, str]:
    """A fleet repository where the readers came in through pull request #7 (a --no-ff merge)."""
    r = Repo(tmp_path / "repo")
    r.write("README.md", "fleet\n")
    r.commit("Initial commit", "Alice")
    r.git("checkout", "-q", "-b", "readers")
    shutil.copytree(FLEET, r.path / "fleet")
    head = r.commit("Declare the Paris readers", "Bob")
    r.git("checkout", "-q", "main")
    r.git(
        "-c",
        "user.name=GitHub",
        "-c",
        "user.email=noreply@github.com",
        "merge",
        "-q",
        "--no-ff",
        "readers",
        "-m",
        "Merge pull request #7 from acme/readers",
    )
    return r, head


def _apply(fleet: Path, journal: Path, commit: str, **env: str) -> None:
    env = {"FLEETCTL_GIT_COMMIT": commit, **env}
    plan_file = journal.parent / "plan.json"
    assert run_cli("plan", str(fleet), "--out", str(plan_file), "--journal", str(journal), env=env).exit_code == 0
    res = run_cli("apply", str(plan_file), "--fleet", str(fleet), "--journal", str(journal), env=env)
    assert res.exit_code == 0, res.output


def test_from_an_address_or_a_request_id_back_to_the_pull_request(aws_env, merged, tmp_path: Path) -> None:
    repo, head = merged
    fleet, journal = repo.path / "fleet", tmp_path / "journal.jsonl"
    _apply(fleet, journal, head)

    res = run_cli(
        "journal", "aws/aws-eu/Thing/DA1275B0", "--journal", str(journal), "--fleet", str(fleet), "--format", "json"
    )
    assert res.exit_code == 0, res.output
    (applied,) = json.loads(res.stdout)["applies"]
    assert (applied["gitCommit"], applied["pullRequest"], applied["actor"]) == (head, 7, "ci-test")
    assert applied["summary"]["success"] == 1 and applied["started"] == "2026-11-21T10:00:00Z"
    (change,) = applied["changes"]
    assert (change["address"], change["action"], change["outcome"]) == (
        "aws/aws-eu/Thing/DA1275B0",
        "create",
        "success",
    )
    ops = [c["op"] for c in change["calls"]]
    assert "create_thing" in ops and "attach_thing_principal" in ops
    assert all(c["outcome"] == "success" and c["requestId"] for c in change["calls"])

    # an auditor holding a request id from CloudTrail finds the change, the plan, the commit and the PR
    request_id = next(c["requestId"] for c in change["calls"] if c["op"] == "create_thing")
    journal_ids = {e.get("requestId") for e in read_entries(journal)}
    assert request_id in journal_ids
    res = run_cli("journal", "--request-id", request_id, "--journal", str(journal), "--fleet", str(fleet))
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"apply {applied['planId']}  commit {head[:12]} (pull request #7)  actor ci-test")
    assert lines[1].startswith("  success     create  aws/aws-eu/Thing/DA1275B0")
    assert any(line.split()[:1] == ["create_thing"] and line.endswith(f"request id {request_id}") for line in lines)
    assert sum(1 for line in lines if line.startswith("  success")) == 1

    assert (
        run_cli("journal", "--request-id", "no-such-id", "--journal", str(journal)).stdout
        == "No journal entries match.\n"
    )


def test_pull_request_recorded_by_the_workflow_and_interrupted_changes(aws_env, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET, fleet)
    journal = tmp_path / "journal.jsonl"
    _apply(fleet, journal, "f" * 40, FLEETCTL_PULL_REQUEST="9", FLEETCTL_RUN_URL="https://ci.example/runs/1")
    # an apply killed after its `begin`: the journal says so
    Journal(journal, clock_from_env({"FLEETCTL_NOW": "2026-11-22T08:00:00Z"}), "p-killed", "e" * 40, "ci").write(
        "begin", address="aws/aws-eu/Thing/DA1275B1", action="update"
    )
    res = run_cli(
        "journal", "aws/aws-eu/Thing/DA1275B1", "--journal", str(journal), "--fleet", str(fleet), "--format", "json"
    )
    applies = json.loads(res.stdout)["applies"]
    assert [(a["planId"] == "p-killed", a["pullRequest"], a["runUrl"]) for a in applies] == [
        (False, 9, "https://ci.example/runs/1"),
        (True, None, None),
    ]
    assert applies[1]["changes"][0]["outcome"] == "interrupted" and applies[1]["finished"] is None
    text = run_cli("journal", "--plan", "p-killed", "--journal", str(journal)).stdout
    assert "interrupted update  aws/aws-eu/Thing/DA1275B1" in text and "→ not finished" in text


def test_squash_merged_commit_and_missing_journal(tmp_path: Path) -> None:
    r = Repo(tmp_path / "repo")
    shutil.copytree(FLEET, r.path / "fleet")
    squash = r.commit("Declare the Paris readers (#12)", "Bob")
    journal = tmp_path / "journal.jsonl"
    Journal(journal, clock_from_env({"FLEETCTL_NOW": "2026-11-22T08:00:00Z"}), "p-1", squash, "ci").write(
        "apply-start", changes=0
    )
    res = run_cli("journal", "--journal", str(journal), "--fleet", str(r.path / "fleet"), "--format", "json")
    assert json.loads(res.stdout)["applies"][0]["pullRequest"] == 12
    res = run_cli("journal", "--journal", str(tmp_path / "absent.jsonl"))
    assert res.exit_code == 1 and "no journal at" in res.stderr
