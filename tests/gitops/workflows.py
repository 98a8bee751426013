"""Helpers to run the GitHub workflows' own steps outside GitHub: their `run:` scripts that call fleetctl (with
only GitHub's plumbing substituted: expressions, GITHUB_OUTPUT/GITHUB_ENV files, the checkout), and their
`actions/github-script` scripts under node against a small stateful GitHub fake.

A matrix job (`strategy.matrix: ${{ fromJSON(needs.<job>.outputs.matrix) }}`) runs as GitHub runs it: once per
`include` entry, each on its own runner (here: its own copy of the checkout, with `matrix.<key>` set from the
entry), and what each uploads is an artifact by name (`Artifacts`), which a later job downloads into its own
workspace (`download`, as actions/download-artifact with `pattern:` puts each artifact in a folder of its name)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
CALLS_FLEETCTL = re.compile(r"(^|[\s;&|({])fleetctl\s", re.MULTILINE)


def load(name: str) -> dict[str, Any]:
    return YAML(typ="safe").load((WORKFLOWS / name).read_text(encoding="utf-8"))


def job_matrix(workflow: dict[str, Any], job: str, outputs: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """The matrix entries of a job fanned out from another job's output: `fromJSON(needs.J.outputs.O)`."""
    expr = EXPRESSION.fullmatch(str(workflow["jobs"][job]["strategy"]["matrix"]))
    assert expr, f"{job}: the matrix is not computed from another job's output"
    inner = re.fullmatch(r"fromJSON\(needs\.([\w-]+)\.outputs\.([\w-]+)\)", expr.group(1))
    assert inner, expr.group(1)
    return list(json.loads(outputs[inner.group(1)][inner.group(2)])["include"])


def matrix_context(entry: dict[str, Any]) -> dict[str, str]:
    return {f"matrix.{k}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in entry.items()}


@dataclass
class Artifacts:
    """actions/upload-artifact and actions/download-artifact between the jobs of a run (and later runs)."""

    store: Path

    def upload(self, name: str, path: Path) -> None:
        dest = self.store / name
        if dest.exists():
            shutil.rmtree(dest)
        if path.is_dir():
            shutil.copytree(path, dest)
        else:
            dest.mkdir(parents=True)
            shutil.copy(path, dest / path.name)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.store.iterdir()) if self.store.exists() else []

    def download(self, name: str, into: Path) -> None:
        """`name:` given: the artifact's files land in `into` itself."""
        shutil.copytree(self.store / name, into, dirs_exist_ok=True)

    def download_pattern(self, prefix: str, into: Path) -> None:
        """`pattern: prefix*`: each matching artifact in `into/<artifact name>/`."""
        for name in self.names():
            if name.startswith(prefix):
                shutil.copytree(self.store / name, into / name, dirs_exist_ok=True)


def steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return list(workflow["jobs"][job]["steps"])


def fleetctl_steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return [s for s in steps(workflow, job) if "run" in s and CALLS_FLEETCTL.search(s["run"])]


def script_step(workflow: dict[str, Any], job: str, step_id_or_name: str) -> dict[str, Any]:
    for s in steps(workflow, job):
        if step_id_or_name in (s.get("id"), s.get("name")):
            return s
    raise KeyError(step_id_or_name)


@dataclass
class StepResult:
    name: str
    exit_code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]


@dataclass
class Runner:
    """Runs `run:` steps as the runner does: `bash --noprofile --norc -eo pipefail`, env from the workflow, job
    and step (expressions substituted from `context`), GITHUB_OUTPUT / GITHUB_ENV / GITHUB_STEP_SUMMARY files."""

    workspace: Path
    context: dict[str, str]
    github_env: dict[str, str]
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def expand(self, text: str) -> str:
        def sub(m: re.Match) -> str:
            expr = m.group(1)
            if expr in self.context:  # outputs of plumbing steps (github-script) come from the test
                return self.context[expr]
            if expr.startswith("steps.") and ".outputs." in expr:
                step, _, name = expr[len("steps.") :].partition(".outputs.")
                return self.outputs.get(step, {}).get(name, "")
            raise KeyError(f"the test does not know the value of the expression '{expr}'")

        return EXPRESSION.sub(sub, str(text))

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETCTL_")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return {**env, **self.github_env}

    def run(self, workflow: dict[str, Any], job: str, step: dict[str, Any]) -> StepResult:
        name = step.get("id") or step.get("name") or "step"
        files = {
            k: self.workspace / ".runner" / f"{name}-{k.lower()}"
            for k in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY")
        }
        files["GITHUB_OUTPUT"].parent.mkdir(exist_ok=True)
        for f in files.values():
            f.write_text("")
        env = self.base_env()
        for scope in (workflow.get("env", {}), workflow["jobs"][job].get("env", {}), step.get("env", {})):
            env.update({k: self.expand(v) for k, v in scope.items()})
        env.update({k: str(v) for k, v in files.items()})
        script = self.workspace / ".runner" / f"{name}.sh"
        script.write_text(self.expand(step["run"]))
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        outputs = dict(line.split("=", 1) for line in files["GITHUB_OUTPUT"].read_text().splitlines() if "=" in line)
        self.outputs[name] = outputs
        self.github_env.update(
            dict(line.split("=", 1) for line in files["GITHUB_ENV"].read_text().splitlines() if "=" in line)
        )
        return StepResult(name, proc.returncode, proc.stdout, proc.stderr, outputs)

    def run_all(
        self,
        workflow: dict[str, Any],
        job: str,
        *,
        check: bool = True,
        only: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, StepResult]:
        results: dict[str, StepResult] = {}
        for step in fleetctl_steps(workflow, job):
            if only and not only(step):
                continue
            result = self.run(workflow, job, step)
            results[result.name] = result
            if check and result.exit_code != 0:
                raise AssertionError(f"step {result.name} exited {result.exit_code}:\n{result.stdout}\n{result.stderr}")
        return results


# --------------------------------------------------------------------------------- github-script under node
NODE_HARNESS = r"""
const fs = require('fs');
const [scriptFile, stateFile] = process.argv.slice(2);
const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
let next = state.nextId || 1000;
const ok = (data) => ({ status: 200, data });
const strip = ({ owner, repo, ...rest }) => rest;
const github = {
  paginate: async (method, params) => (await method(params)).data,
  rest: {
    issues: {
      listComments: async ({ issue_number }) => ok(state.comments.filter((c) => c.issue_number === issue_number)),
      createComment: async ({ issue_number, body }) => {
        const c = { id: next++, issue_number, body, user: { type: 'Bot', login: 'github-actions[bot]' } };
        state.comments.push(c); return ok(c);
      },
      updateComment: async ({ comment_id, body }) => {
        const c = state.comments.find((x) => x.id === comment_id);
        if (!c) throw new Error(`404 comment ${comment_id}`);
        c.body = body; return ok(c);
      },
      listForRepo: async ({ labels, state: st }) => ok(state.issues.filter((i) =>
        (!st || st === 'all' || i.state === st) && (!labels || labels.split(',').every((l) => i.labels.includes(l))))),
      create: async (params) => {
        const i = { number: next++, state: 'open', labels: [], ...strip(params) };
        state.issues.push(i); return ok(i);
      },
      update: async ({ issue_number, ...params }) => {
        const i = state.issues.find((x) => x.number === issue_number);
        if (!i) throw new Error(`404 issue ${issue_number}`);
        Object.assign(i, strip(params)); return ok(i);
      },
    },
    repos: {
      listPullRequestsAssociatedWithCommit: async ({ commit_sha }) => ok(state.pulls.filter((p) =>
        p.merge_commit_sha === commit_sha || (p.commits || []).includes(commit_sha))),
    },
    actions: {
      listArtifactsForRepo: async ({ name }) => {
        const artifacts = state.artifacts.filter((a) => !name || a.name === name);
        return ok({ total_count: artifacts.length, artifacts });
      },
    },
  },
};
const outputs = {};
let failed = null;
const core = { setOutput: (k, v) => { outputs[k] = v; }, setFailed: (m) => { failed = String(m); },
               info: () => {}, warning: () => {}, notice: () => {} };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const script = fs.readFileSync(scriptFile, 'utf8');
new AsyncFunction('github', 'context', 'core', 'require', script)(github, state.context, core, require)
  .then(() => { console.log(JSON.stringify({ state, outputs, failed })); })
  .catch((e) => { console.error(e.stack || String(e)); process.exit(3); });
"""


def run_github_script(script: str, state: dict[str, Any], cwd: Path, env: dict[str, str] | None = None) -> dict:
    """Run an actions/github-script body with node against the fake; returns {state, outputs, failed}."""
    node = shutil.which("node")
    assert node, "node is required"
    (cwd / "harness.cjs").write_text(NODE_HARNESS)
    (cwd / "script.js").write_text(script)
    (cwd / "state.json").write_text(json.dumps(state))
    proc = subprocess.run(
        [node, "harness.cjs", "script.js", "state.json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
