"""The pure parts of a plan's life (issue 12 §5, §6, §8; 13 §7), without a cloud: apiVersion checked in full;
blocked differences in the plan file and every view; no "in sync" next to an error; the journal's applied and
reconciled entries."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from engine.diagnostics import Source, error, warning
from engine.journal import applied, interrupted
from engine.manifest.fleet import load_fleet
from engine.model import Action, Address, Blocked, FieldChange
from engine.plan.driftview import drift_report
from engine.plan.model import Plan, plan_from_json
from engine.plan.render import RENDERERS, summary_line

TARGET = """\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: aws-eu}
spec:
  aws: {region: eu-west-2}
---
"""


def diagnostics(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "fleet.yaml").write_text(TARGET + textwrap.dedent(text))
    return [d.render() for d in load_fleet(tmp_path, env={}).diagnostics.sorted()]


# ------------------------------------------------------------------------------------------ apiVersion (12 §6)
def test_an_unserved_version_of_a_known_group_is_an_error_naming_the_versions(tmp_path):
    out = diagnostics(
        tmp_path,
        """\
        apiVersion: aws.fleetctl.io/v9
        kind: ThingType
        metadata: {name: tt, target: aws-eu}
        spec: {}
        """,
    )
    assert [line[line.index("fleet.yaml:") :] for line in out] == [
        "fleet.yaml:7:1: error: field 'apiVersion': apiVersion 'aws.fleetctl.io/v9' is not served: "
        "aws.fleetctl.io serves aws.fleetctl.io/v1 for ThingType\n    expected apiVersion: aws.fleetctl.io/v1"
    ]


@pytest.mark.parametrize(
    "api_version, kind, expected",
    [
        (
            "aws.fleetctl.io/v2beta1",
            "Nope",
            "apiVersion 'aws.fleetctl.io/v2beta1' is not served: aws.fleetctl.io serves aws.fleetctl.io/v1",
        ),
        ("aws.fleetctl.io/v1", "Thingg", "unknown kind 'Thingg' for aws.fleetctl.io/v1 (did you mean 'Thing'?)"),
        ("aws.fleetctl.io", "Thing", "unknown apiVersion 'aws.fleetctl.io' (did you mean 'aws.fleetctl.io/v1'?)"),
        ("gcp.fleetctl.io/v1", "Thing", "unknown apiVersion 'gcp.fleetctl.io/v1'"),
        (
            "fleetctl.io/v0",
            "Target",
            "apiVersion 'fleetctl.io/v0' is not served: fleetctl.io serves fleetctl.io/v1 for Target",
        ),
    ],
)
def test_api_version_errors(tmp_path, api_version, kind, expected):
    out = "\n".join(
        diagnostics(
            tmp_path,
            f"""\
        apiVersion: {api_version}
        kind: {kind}
        metadata: {{name: x, target: aws-eu}}
        spec: {{}}
        """,
        )
    )
    assert (
        f"fleet.yaml:7:1: error: field 'apiVersion': {expected}" in out
        or f"fleet.yaml:8:1: error: field 'kind': {expected}" in out
    ), out


# ------------------------------------------------------------------------------------------ blocked (12 §8)
BLOCKED = Blocked(
    Address.parse("aws/aws-eu/Certificate/c1"),
    "aws.Certificate",
    Action.UPDATE,
    "the certificate is REVOKED and the manifest says ACTIVE: a REVOKED certificate cannot be made "
    "ACTIVE or INACTIVE again on AWS IoT",
    "issue a new certificate, declare it, and detach the revoked one",
    (FieldChange("status", "REVOKED", "ACTIVE"),),
    "status",
    Source("fleet/aws/c.yaml", 4, 3),
)


def plan_with(**kw) -> Plan:
    return Plan(
        plan_id="p-1",
        created_at="2026-11-21T10:00:00Z",
        git_commit="0" * 40,
        desired_digest="sha256:x",
        changes=(),
        **kw,
    )


def test_blocked_round_trips_through_the_plan_file_and_marks_it_errored():
    p = plan_with(blocked=(BLOCKED,))
    data = json.loads(p.dumps())
    assert data["status"] == "errored"
    back = plan_from_json(data)
    assert back.blocked == (BLOCKED,) and back.errored
    assert plan_from_json(json.loads(plan_with().dumps())).status == "ok"
    marked = {**json.loads(plan_with().dumps()), "status": "errored"}  # a file marked failed stays failed
    assert plan_from_json(marked).errored


def test_blocked_is_listed_in_every_plan_view():
    p = plan_with(blocked=(BLOCKED,))
    text = RENDERERS["text"](p)
    assert "  ! aws/aws-eu/Certificate/c1  (fleet/aws/c.yaml:4:3)" in text
    assert "why: the certificate is REVOKED" in text and "to do: issue a new certificate" in text
    assert "The actual state matches" not in text
    md = RENDERERS["markdown"](p)
    assert "[!CAUTION]" in md and "**To do:** issue a new certificate, declare it, and detach the revoked one." in md
    assert "applies exactly this plan" not in md and "apply refuses it" in md
    assert json.loads(RENDERERS["json"](p))["blocked"][0]["remedy"].startswith("issue a new certificate")


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_drift_with_only_a_blocked_difference_is_not_in_sync(fmt):
    out = drift_report(plan_with(blocked=(BLOCKED,)), fmt)
    assert "in sync" not in out.lower().replace("out of sync", "") or fmt == "json"
    if fmt == "json":
        data = json.loads(out)
        assert data["inSync"] is False and data["blocked"][0]["address"] == "aws/aws-eu/Certificate/c1"
    else:
        assert "issue a new certificate, declare it, and detach the revoked one" in out


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_any_error_forbids_in_sync(fmt):
    p = plan_with(diagnostics=(error("reading the IoT Hub twins failed: 503", address="azure/hub"),))
    out = drift_report(p, fmt)
    assert "In sync" not in out and "in sync" not in out and '"inSync": true' not in out
    if fmt == "json":
        assert json.loads(out)["complete"] is False and json.loads(out)["errors"][0]["summary"].startswith("reading")
    else:
        assert "incomplete" in out
    assert "matches the manifests" not in summary_line(p)


def test_a_warning_alone_still_allows_in_sync():
    out = drift_report(plan_with(diagnostics=(warning("optional target 'x' is not planned"),)))
    assert out.startswith("In sync: the actual state matches the manifests.")


# ------------------------------------------------------------------------------------------ journal (12 §5, 13 §7)
def write_journal(path: Path, *entries: dict) -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def test_applied_finds_the_apply_that_ran_to_its_end_without_failures(tmp_path):
    path = tmp_path / "journal.jsonl"
    write_journal(
        path,
        {"ts": "t1", "event": "apply-start", "planId": "p-1"},
        {"ts": "t2", "event": "apply-end", "planId": "p-1", "applied": 1, "failed": 1, "skipped": 0},
        {"ts": "t3", "event": "apply-start", "planId": "p-2"},
        {"ts": "t4", "event": "apply-end", "planId": "p-2", "applied": 3, "failed": 0, "skipped": 0},
    )
    assert applied(path, "p-1") is None  # it failed in part: not "already applied"
    assert applied(path, "p-2")["line"] == 4 and applied(path, "p-2")["ts"] == "t4"
    assert applied(tmp_path / "none.jsonl", "p-2") is None


def test_reconciled_entries_close_the_open_begins_they_name(tmp_path):
    path = tmp_path / "journal.jsonl"
    write_journal(
        path,
        {"ts": "t1", "event": "begin", "planId": "p-1", "address": "aws/a/Thing/x", "action": "create"},
        {"ts": "t1", "event": "begin", "planId": "p-1", "address": "aws/a/Thing/y", "action": "create"},
        {"ts": "t2", "event": "reconciled", "planId": "p-2", "reconciles": "p-1", "addresses": ["aws/a/Thing/x"]},
        {"ts": "t2", "event": "reconciled", "planId": "p-2", "reconciles": "p-9", "addresses": ["aws/a/Thing/y"]},
    )  # names another plan's begin: y stays open
    assert [(o["planId"], o["address"]) for o in interrupted(path)] == [("p-1", "aws/a/Thing/y")]
