"""Issue 15.4: `fleetctl targets` (the CI matrix, optionally only the Targets a change touches) and
`fleetctl show --merge` (one read-only view of per-Target plan files, a failed Target included)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.aws.test_assume_role import ACCOUNTS, make_roles, role_arn, write_fleet


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=repo, check=True, capture_output=True
    )


def test_targets_json_and_changed_since(cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    fleet = write_fleet(repo / "fleet")
    docs = (fleet / "fleet.yaml").read_text().split("\n---\n")  # Targets in their own file, resources in another
    (fleet / "targets.yaml").write_text("\n---\n".join(d for d in docs if '"kind": "Target"' in d))
    (fleet / "fleet.yaml").write_text("\n---\n".join(d for d in docs if '"kind": "Target"' not in d))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")

    res = cli("targets", str(fleet), "--json")
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    assert listed["count"] == 2
    assert listed["include"] == [
        {
            "target": name,
            "provider": "aws",
            "region": "eu-west-2",
            "account": account,
            "role": role_arn(account),
            "optional": False,
            "lock": f"aws-{account}-eu-west-2",
        }
        for name, account in sorted(ACCOUNTS.items())
    ]
    text = cli("targets", str(fleet)).stdout
    assert text.startswith("2 Target(s):") and f"aws-dev  aws  region eu-west-2, account {ACCOUNTS['aws-dev']}" in text

    assert json.loads(cli("targets", str(fleet), "--json", "--changed-since", "HEAD").stdout)["count"] == 0
    assert cli("targets", str(fleet), "--changed-since", "HEAD").stdout == "No Targets touched since HEAD.\n"
    # one resource of aws-prod changes: only aws-prod is listed
    docs = (fleet / "fleet.yaml").read_text().split("\n---\n")
    docs = [d.replace("sensors of aws-prod", "sensors of prod") for d in docs]
    (fleet / "fleet.yaml").write_text("\n---\n".join(docs))
    changed = json.loads(cli("targets", str(fleet), "--json", "--changed-since", "HEAD").stdout)
    assert [e["target"] for e in changed["include"]] == ["aws-prod"] and changed["changedSince"] == "HEAD"
    # a Target manifest in a changed (here: new) file: listed too, also without resources
    # (the rule is by file: every Target of a changed file is listed, the safe side)
    (fleet / "lab.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "fleetctl.io/v1",
                "kind": "Target",
                "metadata": {"name": "lab"},
                "spec": {"aws": {"region": "us-east-1"}, "optional": True},
            }
        )
    )
    changed = json.loads(cli("targets", str(fleet), "--json", "--changed-since", "HEAD").stdout)
    assert [(e["target"], e["lock"], e["optional"]) for e in changed["include"]] == [
        ("aws-prod", f"aws-{ACCOUNTS['aws-prod']}-eu-west-2", False),
        ("lab", "target-lab", True),
    ]
    assert cli("targets", str(fleet), "--changed-since", "no-such-rev").exit_code == 1


def test_merged_view_of_two_plan_files_one_target_failed(aws_env, cli, tmp_path: Path) -> None:
    make_roles(aws_env["AWS_ENDPOINT_URL"])
    fleet = write_fleet(tmp_path / "fleet")
    dev = tmp_path / "dev.json"
    assert cli("plan", str(fleet), "--target", "aws-dev", "--out", str(dev)).exit_code == 0
    err = tmp_path / "prod.err"
    err.write_text("error: reading aws target 'aws-prod' failed: AccessDenied: not authorized\n")
    res = cli("show", "--merge", str(dev), "--failed", f"aws-prod={err}", "--format", "markdown")
    assert res.exit_code == 0, res.output
    body = res.stdout
    assert body.startswith("<!-- fleetctl-plan -->\n### fleetctl plan: 2 Target(s) for `0123456789ab`, 1 failed")
    assert "this view can never be applied as one plan" in body
    assert (
        f"| `aws-dev` | aws-dev {ACCOUNTS['aws-dev']} (role {role_arn(ACCOUNTS['aws-dev'])}) | `" in body
    ) and "📝 changes: Plan: 3 to create" in body
    assert "| `aws-prod` | — | — | ❌ failed: plan job failed |" in body
    assert "AccessDenied: not authorized" in body
    assert body.index("aws-dev") < body.index("aws-prod")

    as_json = json.loads(cli("show", "--merge", str(dev), "--failed", f"aws-prod={err}", "--format", "json").stdout)
    assert as_json["mergedView"] is True and as_json["applicable"] is False
    assert [(t["target"], t["status"]) for t in as_json["targets"]] == [("aws-dev", "changes"), ("aws-prod", "failed")]
    text = cli("show", "--merge", str(dev), "--failed", f"aws-prod={err}").stdout
    assert "merged view for reading only" in text and "== aws-prod: failed" in text

    # a merged view is not a plan file: apply cannot take it, and show without --merge takes one file
    assert cli("show", str(dev), str(dev)).exit_code == 2
    merged_file = tmp_path / "merged.json"
    merged_file.write_text(json.dumps(as_json))
    res = cli("apply", str(merged_file), "--fleet", str(fleet))
    assert res.exit_code == 1 and "Traceback" not in res.output
