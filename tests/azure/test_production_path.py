"""Issue 15's production path in one fleet, on the sandbox: two AWS Targets in two (moto) accounts reached by
assumed roles from one identity, and an Azure Target with `auth: entraId` (ARM, hub and DPS through tokens the
real azure-identity chain gets from the sandbox tenant; no connection string is set). plan → apply → plan shows no
changes, and the journal holds the account, the role and the request id of every mutating call."""

from __future__ import annotations

import json
import re
from pathlib import Path

from engine.journal import read_entries
from engine.sandbox.certs import make_ca, verification_certificate
from tests.aws.test_assume_role import ACCOUNTS, make_roles, role_arn, write_fleet
from tests.azure import test_entra_id, test_provider_e2e
from tests.azure.test_entra_id import ENTRA_TARGET
from tests.azure.test_provider_e2e import Fleet, declare_every_kind
from tests.conftest import run_cli

entra_env = test_entra_id.entra_env  # the fixtures: Entra ID settings only, demo verification codes
fixed_codes = test_provider_e2e.fixed_codes


def test_two_assumed_role_accounts_and_an_entra_azure_target_in_one_fleet(aws_env, entra_env, fixed_codes, tmp_path):
    make_roles(aws_env["AWS_ENDPOINT_URL"])
    azure = Fleet(tmp_path / "fleet")
    (azure.root / "targets.yaml").write_text(ENTRA_TARGET)  # the Azure Target by Entra ID only
    root = write_fleet(azure.root)  # aws-dev and aws-prod, each by its own role
    ca = make_ca({"CN": "fleetctl production-path root CA", "O": "fleetctl"})
    declare_every_kind(azure, ca, fixed_codes)
    azure.cert("rootca-verification", verification_certificate(ca, fixed_codes))
    assert not any(k.endswith("CONNECTION_STRING") for k in entra_env) and "auth: entraId" in ENTRA_TARGET

    out = tmp_path / "plan.json"
    planned = run_cli("plan", str(root), "--out", str(out), "--detailed-exitcode")
    assert planned.exit_code == 2, planned.output
    plan = json.loads(out.read_text())
    assert plan["options"]["accounts"] == {
        name: {"account": acct, "role": role_arn(acct)} for name, acct in ACCOUNTS.items()
    }
    assert {c["address"].split("/")[1] for c in plan["changes"]} == {"aws-dev", "aws-prod", "hub"}

    applied = run_cli("apply", str(out), "--fleet", str(root))
    assert applied.exit_code == 0, applied.output
    again = run_cli("plan", str(root), "--detailed-exitcode")
    assert again.exit_code == 0 and "No changes" in again.stdout, again.output

    journal = read_entries(Path(aws_env["FLEETCTL_JOURNAL"]))
    calls = [e for e in journal if e.get("op") and e["event"] in ("success", "failure")]
    assert calls and all(e["event"] == "success" for e in calls)
    assert all(e.get("requestId") for e in calls), [e for e in calls if not e.get("requestId")]
    # a call of one change names its address; a bulk registry call names its batch (its changes follow it)
    aws = [e for e in calls if e.get("address", "").startswith("aws/")]
    azure_calls = [e for e in calls if e not in aws]
    assert all(e.get("address", "").startswith("azure/") or "batch" in e for e in azure_calls), azure_calls
    assert aws and azure_calls
    for e in aws:  # the account and role each AWS call acted in
        target = e["address"].split("/")[1]
        assert (e["account"], e["role"]) == (ACCOUNTS[target], role_arn(ACCOUNTS[target])), e
    assert all(re.fullmatch(r"[0-9a-f-]{36}", e["requestId"]) for e in azure_calls)
    arm = [e for e in azure_calls if e["op"].startswith("certificates.")]
    assert arm and all(re.fullmatch(r"[0-9a-f-]{36}", e.get("correlationRequestId") or "") for e in arm)
    assert {e["op"] for e in azure_calls} >= {"bulk_create_or_update_devices", "enrollment_group.create_or_update"}
    text = Path(aws_env["FLEETCTL_JOURNAL"]).read_text()
    assert entra_env["AZURE_CLIENT_SECRET"] not in text and aws_env["AWS_SECRET_ACCESS_KEY"] not in text
