"""`plan --changed-since REV` on a real git repository: a one-thing change in a 1,000-thing fleet costs a few
API calls, not a fleet scan; scoped reads project exactly what bulk reads project."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from moto.iot.models import iot_backends

from engine import run
from engine.incremental import compare, summarize
from engine.model import Address, DesiredResource
from engine.providers.aws.scoped import seconds
from tests.conftest import FLEET, run_cli
from tests.scale.conftest import THINGSET, esp32_macs, write_fleet

N = 1000


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def rows(sites: dict[int, str] | None = None) -> list[str]:
    return ["mac,site", *[f"{m},{(sites or {}).get(i, 'paris')}" for i, m in enumerate(esp32_macs(N))]]


@pytest.fixture
def fleet_repo(tmp_path, aws_env):
    """A git repository holding a 1,000-thing fleet, and an AWS account (moto) that already holds it."""
    repo = tmp_path / "repo"
    root = write_fleet(repo / "fleet", THINGSET, rows())
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "fleet")
    ctx = run.Context(journal_path=tmp_path / "journal.jsonl", workers=16)
    first = run.plan(root, ctx)  # the shared kinds through the engine; the 1,000 things seeded directly
    small = [c for c in first.plan.changes if c.kind != "aws.Thing"]
    specs = {n: m.spec for n, m in first.fleet.targets().items()}
    assert run.apply(type(first.plan)(**{**first.plan.__dict__, "changes": tuple(small)}), ctx, root, specs).ok
    backend = iot_backends["123456789012"]["eu-west-2"]
    group = backend.describe_thing_group("esp32-fleet")
    for c in first.plan.changes:
        if c.kind == "aws.Thing":
            thing = backend.create_thing(
                c.address.name, "esp32", {"attributes": {**c.desired["attributes"], "managed-by": "fleetctl"}}
            )
            group.things[thing.arn] = thing
    return repo, root


def floor(calls: dict[str, int]) -> float:
    return seconds({"".join(w.capitalize() for w in op.split("_")): n for op, n in calls.items()})


def plan_calls(root: Path, tmp_path: Path, **kw) -> tuple[run.PlanResult, dict[str, int]]:
    result = run.plan(root, run.Context(journal_path=tmp_path / "journal.jsonl"), **kw)
    return result, result.stats["providers"]["aws/aws-eu"]["calls"]


def test_one_changed_row_plans_one_thing_with_a_handful_of_calls(fleet_repo, tmp_path):
    repo, root = fleet_repo
    full, full_calls = plan_calls(root, tmp_path)
    assert full.plan.changes == ()  # the account holds the fleet
    assert full_calls["list_things"] == 4 and "list_thing_principals" not in full_calls  # no links managed
    (root / "devices.csv").write_text("\n".join(rows({417: "lyon"})) + "\n")
    scoped, calls = plan_calls(root, tmp_path, changed_since="HEAD")
    assert [(str(c.address), c.action.value, [f.path for f in c.fields]) for c in scoped.plan.changes] == [
        ("aws/aws-eu/Thing/esp32-240AC40001A1", "update", ["attributes.site"])
    ]
    # one sts:GetCallerIdentity per Target: the account the plan is made for (recorded; apply refuses another)
    assert calls == {"sts:get_caller_identity": 1, "describe_thing": 1, "list_thing_groups_for_thing": 1}
    # at AWS's default quotas: 4 ListThings pages at 10 TPS (0.4 s) against 1 DescribeThing and 1
    # ListThingGroupsForThing at 350 and 100 TPS (0.01 s) — and the gap grows with the fleet, the change's cost not
    # (IoT quotas only: both plans make the same one STS call)
    iot = {op: n for op, n in calls.items() if not op.startswith("sts:")}
    assert floor(iot) * 40 <= floor({op: n for op, n in full_calls.items() if not op.startswith("sts:")})
    assert scoped.plan.options["scope"] == {
        "changedSince": "HEAD",
        "commit": git(repo, "rev-parse", "HEAD").strip(),
        "changed": 1,
        "dependants": 0,
        "removed": [],
    }
    # the saved scoped plan applies, and its stale check reads the same single thing
    ctx = run.Context(journal_path=tmp_path / "journal.jsonl")
    report = run.apply(scoped.plan, ctx, root, {n: m.spec for n, m in scoped.fleet.targets().items()})
    assert report.ok and report.applied == ["aws/aws-eu/Thing/esp32-240AC40001A1"]
    assert report.stats["aws/aws-eu"]["calls"] == {
        "sts:get_caller_identity": 1,  # apply checks the plan's account
        "describe_thing": 1,
        "list_thing_groups_for_thing": 1,
        "update_thing": 1,
    }
    git(repo, "commit", "-qam", "move one device")
    assert plan_calls(root, tmp_path, changed_since="HEAD~1")[0].plan.changes == ()  # applied: nothing left


def test_a_removed_row_is_read_and_kept_unless_pruning(fleet_repo, tmp_path):
    repo, root = fleet_repo
    (root / "devices.csv").write_text("\n".join(r for i, r in enumerate(rows()) if i != 6) + "\n")
    scoped, calls = plan_calls(root, tmp_path, changed_since="main")
    assert scoped.plan.changes == () and calls["describe_thing"] == 1
    assert [d.address for d in scoped.plan.diagnostics] == ["aws/aws-eu/Thing/esp32-240AC4000005"]
    pruned, _ = plan_calls(root, tmp_path, changed_since="main", prune=True)
    assert [(str(c.address), c.action.value) for c in pruned.plan.changes] == [
        ("aws/aws-eu/Thing/esp32-240AC4000005", "delete")
    ]


def test_cli_plan_changed_since_says_what_it_read(fleet_repo):
    repo, root = fleet_repo
    result = run_cli("plan", str(root), "--changed-since", "main")
    assert result.exit_code == 0
    assert "Scope: 0 resource(s) changed since main" in result.stdout or "No changes" in result.stdout
    bad = run_cli("plan", str(root), "--changed-since", "no-such-rev")
    assert bad.exit_code == 1 and "git rev-parse --verify --quiet failed" in bad.stderr


def _desired(name: str, kind: str = "aws.Thing", deps: tuple[Address, ...] = (), **spec) -> DesiredResource:
    return DesiredResource(Address.of("aws", "t", kind.split(".")[1], name), kind, spec, depends_on=deps)


def test_compare_dependants_follow_identity_changes_only():
    cert = _desired("c1", "aws.Certificate", certificateId="a" * 64)
    group = _desired("g", "aws.ThingGroup", description="old")
    thing = _desired("t1", deps=(cert.address, group.address), principals=["c1"], groups=["g"])
    other = _desired("t2", deps=(group.address,), groups=["g"])
    before = {d.address: summarize(d) for d in [cert, group, thing, other]}
    # a group description change: the group only, not its members
    after = [cert, _desired("g", "aws.ThingGroup", description="new"), thing, other]
    assert compare(before, after) == ({group.address}, set(), set())
    # a new certificate (immutable id): the thing holding it is re-planned
    after = [_desired("c1", "aws.Certificate", certificateId="b" * 64), group, thing, other]
    assert compare(before, after) == ({cert.address}, set(), {thing.address})
    # removed resources, and a moved manifest (same resources) that changes nothing
    assert compare(before, [group, other]) == (set(), {cert.address, thing.address}, set())
    assert compare(before, [other, thing, group, cert]) == (set(), set(), set())
    assert before[cert.address].ids == {"certificateId": "a" * 64}


def test_scoped_reads_project_exactly_what_bulk_reads_project(aws_env, fleet_dir, tmp_path):
    ctx = run.Context(journal_path=tmp_path / "journal.jsonl")
    first = run.plan(fleet_dir, ctx, targets={"aws-eu"})
    specs = {n: m.spec for n, m in first.fleet.targets().items()}
    assert run.apply(first.plan, ctx, first.fleet.root, specs).ok
    provider = run.get_provider(run.Context(), ("aws", "aws-eu"), specs)
    desired = [d for d in first.fleet.desired if d.address.provider == "aws"]
    full = {a.address: a for a in provider.read(desired, prune=True).actual}
    assert len(full) >= 10
    for strategy in ("describe", "list"):
        scoped = {a.address: a for a in provider.read_scoped(desired, list(full), strategy=strategy).actual}
        assert {a: (s.fingerprint, s.managed) for a, s in scoped.items()} == {
            a: (f.fingerprint, f.managed) for a, f in full.items()
        }, strategy


def test_fleet_folder_that_did_not_exist_at_rev(tmp_path, aws_env):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("x")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "empty")
    shutil.copytree(FLEET, repo / "fleet")
    scoped, _ = plan_calls(repo / "fleet", tmp_path, changed_since="main", targets={"aws-eu"})
    aws = {str(d.address) for d in scoped.fleet.desired if d.address.provider == "aws"}
    assert {str(c.address) for c in scoped.plan.changes if c.address.provider == "aws"} == aws and len(aws) == 17
    # everything is created but the account-wide settings every account has (updated in place)
    assert {
        (c.action.value, c.kind in ("aws.IndexingConfiguration", "aws.LoggingOptions")) for c in scoped.plan.changes
    } == {("create", False), ("update", True)}
