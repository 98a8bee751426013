"""Every snippet of docs/gitops.md is exercised: console lines run against the sandbox (exit codes as
written), YAML snippets are loaded by fleetctl, and the OIDC JSON is checked against the workflows and against
the AWS calls fleetctl really makes."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import run
from engine.journal import read_entries
from engine.lint import Level, all_rules, load_config
from tests.conftest import FLEET, ROOT
from tests.gitops.test_history import Repo
from tests.gitops.workflows import WORKFLOWS, load

DOC = ROOT / "docs" / "gitops.md"
SNIPPET = re.compile(r"<!-- snippet: ([a-z0-9-]+) -->\n```(\w+)\n(.*?)\n```", re.S)
COMMAND = re.compile(r"^\$ (.*?)(?:\s+# exit (\d)\b.*)?$")


def snippets() -> dict[str, tuple[str, str]]:
    return {m.group(1): (m.group(2), m.group(3)) for m in SNIPPET.finditer(DOC.read_text())}


def test_every_fenced_block_is_a_known_snippet() -> None:
    text = DOC.read_text()
    assert text.count("```") == 2 * len(SNIPPET.findall(text)), "a fenced block without a snippet marker"
    assert set(snippets()) == {
        "local-flow",
        "audit",
        "lint-commands",
        "lint-config",
        "lint-annotation",
        "aws-plan-trust",
        "aws-plan-permissions",
        "aws-apply-trust",
        "aws-apply-permissions",
        "azure-role",
        "target-assume-role",
    }


def _commands(snippet_id: str) -> list[tuple[str, int]]:
    lang, body = snippets()[snippet_id]
    assert lang == "console"
    out = []
    for line in body.splitlines():
        m = COMMAND.match(line)
        assert m, f"not a command line: {line!r}"
        out.append((m.group(1), int(m.group(2) or 0)))
    return out


def _run(ws: Path, env: dict[str, str], snippet_id: str) -> list[str]:
    outputs = []
    for command, expected in _commands(snippet_id):
        proc = subprocess.run(["bash", "-c", command], cwd=ws, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == expected, f"$ {command}\n{proc.stdout}\n{proc.stderr}"
        outputs.append(proc.stdout)
    return outputs


def test_console_and_yaml_snippets_run_against_the_sandbox(aws_env, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    shutil.copytree(FLEET, repo.path / "fleet", ignore=shutil.ignore_patterns("out", ".fleetctl"))
    repo.commit("Declare the fleet", "Alice")
    env = {k: v for k, v in os.environ.items() if k not in ("FLEETCTL_JOURNAL", "FLEETCTL_GIT_COMMIT")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"

    validate, lint, plan, apply, replan, drift = _run(repo.path, env, "local-flow")
    assert "resource(s) valid" in validate and "No findings" in lint
    assert (repo.path / "plan.md").read_text().startswith("<!-- fleetctl-plan -->")
    assert "17 applied, 0 failed" in apply and "No changes" in replan
    assert drift.startswith("<!-- fleetctl-drift -->\n### fleetctl drift: in sync")

    # the annotation snippet, committed where its first line says
    lang, body = snippets()["lint-annotation"]
    path = re.match(r"# (\S+?):", body).group(1)
    (repo.path / path).write_text(body + "\n")
    repo.commit("Add the broadcast listeners policy", "Bob")
    res = subprocess.run(
        ["fleetctl", "lint", "fleet", "--format", "json"], cwd=repo.path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout
    findings = json.loads(res.stdout)["findings"]
    assert [f["rule"] for f in findings] == ["FL003", "FL003"]  # topicfilter/ and topic/ fleet/broadcast
    assert all(f["suppressed"].startswith("annotation fleetctl.io/lint-ignore") for f in findings)

    # the config snippet, at the fleet root
    lang, body = snippets()["lint-config"]
    assert lang == "yaml" and body.startswith("# fleet/.fleetctl-lint.yaml")
    (repo.path / "fleet" / ".fleetctl-lint.yaml").write_text(body + "\n")
    config = load_config(repo.path / "fleet")
    assert config.select == ("FL0",) and config.ignore == ("FL006",)
    assert config.options["FL005"] == {"days": 60} and config.levels["FL003"] is Level.ERROR
    assert not config.enabled("FL006") and config.enabled("FL005")

    sarif_out, rules = _run(repo.path, env, "lint-commands")
    sarif = json.loads((repo.path / "lint.sarif").read_text())
    assert [(r["ruleId"], r["level"], "suppressions" in r) for r in sarif["runs"][0]["results"]] == [
        ("FL003", "error", True)
    ] * 2
    assert "FL006" not in [r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]]
    assert len(rules.splitlines()) == len(all_rules())

    env["REQUEST_ID"] = next(
        e["requestId"]
        for e in read_entries(repo.path / ".fleetctl" / "journal.jsonl")
        if e.get("op") == "create_thing" and e.get("requestId") and e["address"] == "aws/aws-eu/Thing/DA1275B0"
    )
    history, policies, journal, by_request = _run(repo.path, env, "audit")
    assert "created in fleet/aws/springpark.yaml:92" in history
    assert [r["address"] for r in json.loads(policies)["resources"]] == ["aws/aws-eu/Policy/broadcast-listeners"]
    assert "success     create  aws/aws-eu/Thing/DA1275B0" in journal
    (applied,) = json.loads(by_request)["applies"]
    assert [c["address"] for c in applied["changes"]] == ["aws/aws-eu/Thing/DA1275B0"]


def test_documented_variables_are_the_workflows_variables() -> None:
    used = set()
    for wf in WORKFLOWS.glob("*.yml"):
        used |= set(re.findall(r"\bvars\.([A-Z_]+)", wf.read_text()))
    documented = set(re.findall(r"^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)?(?:, `([A-Z_]+)`)? \|", DOC.read_text(), re.M))
    names = {n for row in documented for n in row if n}
    assert used == names


def _json(snippet_id: str) -> dict:
    lang, body = snippets()[snippet_id]
    assert lang == "json"
    return json.loads(body)


def test_trust_policies_match_the_workflows() -> None:
    plan_subs = _json("aws-plan-trust")["Statement"][0]["Condition"]["StringLike"][
        "token.actions.githubusercontent.com:sub"
    ]
    assert plan_subs == ["repo:acme/fleet:pull_request", "repo:acme/fleet:ref:refs/heads/main"]
    assert set(load("plan.yml")["on"]) == {"pull_request"}
    apply_sub = _json("aws-apply-trust")["Statement"][0]["Condition"]["StringEquals"][
        "token.actions.githubusercontent.com:sub"
    ]
    assert apply_sub == f"repo:acme/fleet:environment:{load('apply.yml')['jobs']['apply']['environment']}"
    text = DOC.read_text()
    for sub in plan_subs + [apply_sub]:
        assert f"`{sub}`" in text  # the Azure federated credentials use the same subjects


def _allowed(policy: dict, action: str) -> bool:
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if st["Effect"] == "Allow" and any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
            return True
    return False


def _iam(op: str) -> str:
    service, _, name = op.rpartition(":")  # "iam:create_role" → iam:CreateRole (ServiceRole)
    return (service or "iot") + ":" + "".join(w.capitalize() for w in name.split("_"))


def test_aws_permissions_cover_every_call_fleetctl_makes(aws_env, fleet_dir: Path, tmp_path: Path) -> None:
    ctx = run.Context(journal_path=tmp_path / "journal.jsonl")
    result = run.plan(fleet_dir, ctx)
    # sts:GetCallerIdentity (the account a plan records, engine/accounts.py) needs no IAM permission
    plan_calls = {op for p in ctx.providers.values() for op in p.stats()["calls"] if not op.startswith("sts:")}
    specs = {n: m.spec for n, m in result.fleet.targets().items()}
    assert run.apply(result.plan, ctx, result.fleet.root, specs).ok
    all_calls = {op for p in ctx.providers.values() for op in p.stats()["calls"] if not op.startswith("sts:")}
    assert {"list_thing_groups", "create_thing", "register_ca_certificate"} <= all_calls
    read_only, apply_role = _json("aws-plan-permissions"), _json("aws-apply-permissions")
    assert [op for op in sorted(plan_calls) if not _allowed(read_only, _iam(op))] == []
    assert [op for op in sorted(all_calls) if not _allowed(apply_role, _iam(op))] == []
    assert not _allowed(read_only, "iot:CreateThing") and not _allowed(read_only, "iot:DeleteCertificate")
    source = "\n".join(p.read_text() for p in (ROOT / "engine" / "providers" / "aws").glob("*.py"))  # every family
    mutating = {
        _iam(op)
        for op in re.findall(r'(?<![a-z0-9_])call\("([a-z_]+)"', source)
        if not op.startswith(("describe_", "get_", "list_"))
    }
    assert len(mutating) > 30
    assert sorted(a for a in mutating if not _allowed(apply_role, a)) == []  # every change apply can make


def test_azure_roles_are_rbac_and_the_workflows_list_no_keys() -> None:
    """Issue 15.1: Entra ID (RBAC) roles, no shared access keys listed by the workflows."""
    roles = {r["role"] for r in _json("azure-role")["roleAssignments"]}
    assert {"IoT Hub Registry Contributor", "Device Provisioning Service Data Contributor"} <= roles
    for wf in ("plan.yml", "apply.yml", "drift.yml"):
        text = (WORKFLOWS / wf).read_text()
        assert "listkeys" not in text.lower() and "az rest" not in text, wf
    assert "auth: entraId" in DOC.read_text()


def test_assume_role_snippet_is_a_valid_target() -> None:
    from ruamel.yaml import YAML

    from engine.manifest.core_kinds import TargetSpec

    lang, body = snippets()["target-assume-role"]
    spec = TargetSpec.model_validate(YAML(typ="safe").load(body)["spec"])
    assert spec.aws.assumeRole.roleArn.split(":")[4] == spec.aws.accountId


def test_lint_rule_table_lists_every_rule() -> None:
    rows = re.findall(r"^\| (FL\d{3}) \| ([a-z-]+) \|$", DOC.read_text(), re.M)
    assert rows == [(r.id, r.name) for r in all_rules().values()]


@pytest.mark.parametrize("name", ["plan.yml", "apply.yml", "drift.yml", "ci.yml"])
def test_the_flow_table_names_each_workflow(name: str) -> None:
    assert f"`.github/workflows/{name}`" in DOC.read_text()
