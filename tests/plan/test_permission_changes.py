"""Effective-permission changes in Needs attention (issue 14.4, engine/plan/permissions.py), end to end on moto.

The statement-level flag says a statement widened; the effective-permission item says what the devices may now
do, for how many of them, with a concrete request the evaluator proved on both sides. Drift reads the same delta
backwards: what the account allows that the manifests do not.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.aws.test_policy_diff_e2e import WIDEN, WIDEN_YAML, set_document
from tests.conftest import run_cli

POLICY = "aws/aws-eu/Policy/reader-policy"


def _items(report: dict, address: str) -> list[dict]:
    return [a for a in report["attention"] if a["address"] == address and "effective permissions" in a["message"]]


def test_out_of_band_widening_is_an_effective_permission_escalation_in_drift(aws_env, fleet_dir: Path) -> None:
    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0
    set_document(lambda doc: doc["Statement"].append(dict(WIDEN)))

    drift = run_cli("drift", str(fleet_dir), "--format", "json")
    assert drift.exit_code == 2, drift.output
    (item, *more) = [a for a in _items(json.loads(drift.stdout), POLICY) if a["code"] == "permissions-widened"]
    assert item["severity"] == "high"
    assert "effective permissions in the account exceed the manifests" in item["message"]
    assert "policy 'reader-policy' document changed" in item["message"]

    text = run_cli("drift", str(fleet_dir)).stdout
    head = text.split("\n  (")[0]  # the Needs attention section comes before the field lines
    assert "Needs attention" in head and "effective permissions in the account exceed the manifests" in head

    plan = json.loads(run_cli("plan", str(fleet_dir), "--format", "json").stdout)
    (repair,) = [a for a in _items(plan, POLICY) if a["code"] == "permissions-narrowed"][:1]
    assert repair["severity"] == "info" and "effective permissions narrow" in repair["message"]
    assert " e.g. " in repair["message"] and "may no longer" in repair["message"]  # a request proved on both sides


def test_a_manifest_widening_says_what_the_devices_may_now_do(aws_env, fleet_dir: Path, tmp_path: Path) -> None:
    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0
    spark = fleet_dir / "aws" / "springpark.yaml"
    anchor = "    Statement:\n"
    spark.write_text(spark.read_text().replace(anchor, anchor + WIDEN_YAML))

    planfile = tmp_path / "plan.json"
    out = run_cli("plan", str(fleet_dir), "--out", str(planfile))
    assert out.exit_code == 0, out.output
    head = out.stdout.split(f"  ~ {POLICY}")[0]
    assert "effective permissions widen" in head and "may now" in head
    data = json.loads(planfile.read_text())
    widened = [a for a in _items(data, POLICY) if a["code"] == "permissions-widened"]
    assert widened and all(a["severity"] == "high" for a in widened)
    md = run_cli("show", str(planfile), "--format", "markdown").stdout
    assert "effective permissions widen" in md.split("| kind |")[0]
    # the plan file with its permission items still applies (apply never re-diffs)
    assert run_cli("apply", str(planfile), "--fleet", str(fleet_dir)).exit_code == 0


def test_a_plan_without_authorization_inputs_does_not_evaluate(aws_env, fleet_dir: Path, monkeypatch) -> None:
    import engine.authz.delta as delta

    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0
    calls: list[int] = []
    real = delta.permission_delta
    monkeypatch.setattr(delta, "permission_delta", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert run_cli("plan", str(fleet_dir), "--detailed-exitcode").exit_code == 0
    assert calls == []
