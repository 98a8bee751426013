"""Plan comments and drift reports: a 5,000-change plan from the pure planner fits one GitHub comment (counts
first, destructive changes first and flagged, kinds collapsed, a pointer to the artifact); sensitive values stay
masked in every view; drift is reported per resource and field in text, markdown and JSON after a real
out-of-band change against moto."""

from __future__ import annotations

import json
import re

import boto3

from engine.diagnostics import Source
from engine.model import SENSITIVE, Action, ActualResource, Address, Change, DesiredResource, FieldChange
from engine.plan.driftview import drift_report
from engine.plan.model import Plan
from engine.plan.planner import PlanOptions, plan
from engine.plan.render import ARTIFACT_PREFIX, GITHUB_COMMENT_LIMIT, markdown, text
from tests.conftest import run_cli

COMMIT = "c0ffee" + "0" * 34


def _thing(i: int, site: str) -> dict:
    return {"attributes": {"serial": f"SN{i:05d}", "site": site, "note": "x" * 60}, "groups": ["readers"]}


def synthetic_plan() -> Plan:
    """4,000 creates, 600 updates, 300 replaces and 100 deletes, from plain data."""
    desired, actual = [], []
    for i in range(4600):
        address = Address.of("aws", "aws-eu", "Thing", f"T{i:05d}")
        desired.append(DesiredResource(address, "aws.Thing", _thing(i, "paris"), Source("fleet/things.yaml", i + 1, 1)))
        if i >= 4000:
            actual.append(ActualResource(address, "aws.Thing", _thing(i, "lyon"), token=str(i), managed=True))
    for i in range(300):
        address = Address.of("aws", "aws-eu", "ThingGroup", f"G{i:03d}")
        desired.append(DesiredResource(address, "aws.ThingGroup", {"parent": "readers", "description": "d"}))
        actual.append(ActualResource(address, "aws.ThingGroup", {"parent": "old", "description": "d"}, managed=True))
    for i in range(100):
        actual.append(
            ActualResource(
                Address.of("aws", "aws-eu", "Policy", f"P{i:03d}"),
                "aws.Policy",
                {"document": {"Statement": []}, "keepVersions": 5},
                token="1",
                managed=True,
            )
        )
    return plan(
        desired,
        actual,
        PlanOptions(
            prune_targets=frozenset({"aws-eu"}),
            git_commit=COMMIT,
            created_at="2026-11-21T10:00:00Z",
            desired_digest="sha256:x",
        ),
    )


def test_five_thousand_changes_fit_one_comment() -> None:
    big = synthetic_plan()
    assert len(big.changes) == 5000 and big.counts() == {"create": 4000, "update": 600, "replace": 300, "delete": 100}
    md = markdown(big)
    assert len(md) < GITHUB_COMMENT_LIMIT and len(md.encode("utf-8")) < GITHUB_COMMENT_LIMIT
    lines = md.splitlines()
    assert lines[0] == "<!-- fleetctl-plan -->"
    assert lines[3] == "**Plan: 4000 to create, 600 to update, 300 to replace, 100 to delete.**"
    first_details = md.index("<details")
    table = md.index("| kind | delete | replace | create | update |")
    assert table < first_details
    for row in (
        "| aws.Policy | 100 |  |  |  |",
        "| aws.Thing |  |  | 4000 | 600 |",
        "| aws.ThingGroup |  | 300 |  |  |",
        "| **total** | **100** | **300** | **4000** | **600** |",
    ):
        assert row in md
    # the "Needs attention" block (engine/plan/attention.py) replaced the "destructive change(s)" warning: right
    # after the summary line, before the kind table; deletes first; every code keeps its count when capped
    caution = md.index("> [!CAUTION]\n> **Needs attention: 400 item(s)** (400 warning)")
    assert md.index(lines[3]) < caution < table < first_details
    assert (
        "> - 🟠 **delete** `aws/aws-eu/Policy/P000`: `deletes the aws.Policy (managed by fleetctl, no longer "
        "declared, pruning enabled)`"
    ) in md
    assert md.index("**delete** `aws/aws-eu/Policy/P000`") < md.index("**replace** `aws/aws-eu/ThingGroup/G000`")
    assert "> - … and 50 more **delete**" in md and "> - … and 250 more **replace**" in md
    assert "! replace aws/aws-eu/ThingGroup/G000  (parent cannot be updated in place)  [!replace]" in md
    summaries = re.findall(r"<details( open)?><summary>(.*?)</summary>", md)
    assert summaries == [
        (" open", "⚠️ aws.Policy: 100 destructive change(s)"),
        (" open", "⚠️ aws.ThingGroup: 300 destructive change(s)"),
        ("", "aws.Thing: 4600 change(s)"),
    ]
    assert md.count("<details") == md.count("</details>") and md.count("```") % 2 == 0
    assert f"the full plan is in the workflow artifact `{ARTIFACT_PREFIX}{COMMIT}`" in md
    # too large for one comment: whole changes are left out, creates and updates before any destructive one, and
    # every change still listed is complete
    assert (
        "_4763 of 5000 change(s) are left out above to fit one comment (whole changes, creates first, then "
        "updates, replaces and deletes, each from the end of the plan, changes flagged under Needs attention last); "
        "the full plan is in" in md
    )
    assert "+ create aws/aws-eu/Thing/" not in md and "! update aws/aws-eu/Thing/" not in md
    assert md.count("- delete aws/aws-eu/Policy/") == 100
    assert md.count("! replace aws/aws-eu/ThingGroup/") == 137 and "… and 163 more change(s) left out" in md
    assert md.count('!    parent: "old" → "readers"') == 137
    assert "! replace aws/aws-eu/ThingGroup/G136  (parent cannot be updated in place)" in md
    assert "G137" not in md.split("<details")[2]
    assert md.rstrip().endswith("the pull request must be re-planned._")


def test_small_plan_shows_every_field_and_fences_survive_backticks() -> None:
    address = Address.of("aws", "aws-eu", "Thing", "DA1")
    tricky = {"attributes": {"note": "```\n</details>"}}
    small = plan([DesiredResource(address, "aws.Thing", tricky)], [], PlanOptions(git_commit=COMMIT))
    md = markdown(small)
    assert "shortened" not in md
    assert "+ create aws/aws-eu/Thing/DA1" in md and 'attributes: {"note": "```\\n</details>"}' in md
    block = re.search(r"\n(`{3,})diff\n(.*?)\n\1\n</details>", md, re.S)
    assert block and len(block.group(1)) == 4 and "create aws/aws-eu/Thing/DA1" in block.group(2)
    empty = markdown(plan([], [], PlanOptions()))
    assert "No changes." in empty and "<details" not in empty


def test_sensitive_values_are_masked_in_every_view() -> None:
    address = Address.of("azure", "azure-prod", "Device", "d1")
    leaky = FieldChange("authentication.primaryKey", "old-key-value-1", "new-key-value-2", sensitive=True)
    change = Change(
        address, "azure.Device", Action.UPDATE, fields=(leaky, FieldChange("status", "disabled", "enabled"))
    )
    p = Plan("p-1", "2026-11-21T10:00:00Z", COMMIT, "sha256:x", (change,))
    for out in (markdown(p), text(p), drift_report(p, "text"), drift_report(p, "markdown"), drift_report(p, "json")):
        assert "key-value" not in out and SENSITIVE in out
        assert "enabled" in out
    fields = json.loads(drift_report(p, "json"))["drift"][0]["fields"]
    assert fields[0] == {
        "drift": "changed",
        "path": "authentication.primaryKey",
        "manifest": SENSITIVE,
        "actual": SENSITIVE,
        "sensitive": True,
    }


def test_drift_in_text_markdown_and_json_after_an_out_of_band_change(aws_env, fleet_dir) -> None:
    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0
    for fmt, expected in (("text", "In sync: the actual state matches the manifests.\n"), ("json", '"inSync": true')):
        res = run_cli("drift", str(fleet_dir), "--format", fmt)
        assert res.exit_code == 0 and expected in res.stdout
    assert run_cli("drift", str(fleet_dir), "--format", "markdown").stdout.startswith(
        "<!-- fleetctl-drift -->\n### fleetctl drift: in sync"
    )

    iot = boto3.client("iot", region_name="eu-west-2")
    iot.update_thing(thingName="DA1275B0", attributePayload={"attributes": {"site": "lyon|north"}, "merge": True})
    iot.detach_thing_principal(
        thingName="DA1275B2", principal=iot.list_thing_principals(thingName="DA1275B2")["principals"][0]
    )
    iot.delete_thing(thingName="DA1275B2")

    res = run_cli("drift", str(fleet_dir))
    assert res.exit_code == 2
    lines = res.stdout.splitlines()
    # the deleted thing's certificate is still in the account, but nothing may connect as DA1275B2 any more: an
    # effective-permission item (engine/plan/permissions.py), the only Needs-attention item of this drift
    assert lines[1] == "Needs attention (1: 1 warning):"
    assert lines[2].startswith(
        "  ! [!permissions-narrowed] aws/aws-eu/Thing/DA1275B2: effective permissions in the "
        "account fall short of the manifests for 1 thing(s)"
    )
    assert lines[3] == ""
    assert "  aws/aws-eu/Thing/DA1275B2: missing  (fleet/aws/springpark.yaml:110:12)  [!permissions-narrowed]" in lines
    del lines[1:4]
    lines = [line.removesuffix("  [!permissions-narrowed]") for line in lines]
    assert lines == [
        "Drift: 2 resource(s) differ from the manifests.",
        "  (+ only in the actual state (added outside fleetctl), - only in the manifests, ~ manifest → actual)",
        "  aws/aws-eu/Thing/DA1275B0: differs  (fleet/aws/springpark.yaml:92:12)",
        '      ~ attributes.site: "paris" → "lyon|north"',
        "  aws/aws-eu/Thing/DA1275B2: missing  (fleet/aws/springpark.yaml:110:12)",
    ]

    res = run_cli("drift", str(fleet_dir), "--format", "markdown")
    assert res.exit_code == 2
    assert "### fleetctl drift: 2 resource(s) out of sync" in res.stdout
    assert (
        "| `aws/aws-eu/Thing/DA1275B0` | differs: 1 field change(s) | `fleet/aws/springpark.yaml:92:12` |" in res.stdout
    )
    assert (
        "| `aws/aws-eu/Thing/DA1275B2`  [!permissions-narrowed] | missing (declared, absent) | "
        "`fleet/aws/springpark.yaml:110:12` |" in res.stdout
    )
    assert (
        '\n! aws/aws-eu/Thing/DA1275B0  (fleet/aws/springpark.yaml:92:12)\n!    attributes.site: "paris" → '
        '"lyon|north"\n' in res.stdout
    )

    res = run_cli("drift", str(fleet_dir), "--format", "json")
    assert res.exit_code == 2
    report = json.loads(res.stdout)
    assert report["inSync"] is False
    assert report["summary"] == {"resources": 2, "missing": 1, "differs": 1, "not declared": 0, "blocked": 0}
    (missing,) = [d for d in report["drift"] if d["address"] == "aws/aws-eu/Thing/DA1275B2"]
    assert [a["code"] for a in missing.pop("attention")] == ["permissions-narrowed"]
    assert report["drift"] == [
        {
            "address": "aws/aws-eu/Thing/DA1275B0",
            "kind": "aws.Thing",
            "state": "differs",
            "action": "update",
            "source": "fleet/aws/springpark.yaml:92:12",
            "fields": [{"drift": "changed", "path": "attributes.site", "manifest": "paris", "actual": "lyon|north"}],
        },
        {
            "address": "aws/aws-eu/Thing/DA1275B2",
            "kind": "aws.Thing",
            "state": "missing",
            "action": "create",
            "source": "fleet/aws/springpark.yaml:110:12",
            "fields": [],
        },
    ]
