"""Plans of large fleets: the binding quota and duration estimate, the per-kind summary, and the drill-down
into one device of a saved plan."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
from botocore import xform_name

from engine import run
from engine.plan.model import load_plan
from engine.plan.render import markdown, text
from engine.providers.aws.client import is_mutating
from tests.conftest import run_cli
from tests.scale.conftest import THINGSET, esp32_macs

_API = {
    xform_name(name): name
    for service in ("iot", "iam")  # ServiceRole's calls are IAM's
    for name in botocore.session.get_session().get_service_model(service).operation_names
}


def api(op: str) -> str:
    return _API[op]


def mutating(stats: dict) -> dict[str, int]:
    return {api(op.removeprefix("iam:")): n for op, n in stats["calls"].items() if is_mutating(op.removeprefix("iam:"))}


def test_the_estimate_counts_exactly_the_calls_apply_makes(aws_env, fleet_dir, tmp_path):
    """Each kind's call table (engine/providers/aws/planning.py CALLS) against the calls counted on moto."""
    ctx = run.Context(journal_path=tmp_path / "journal.jsonl")
    result = run.plan(fleet_dir, ctx, targets={"aws-eu"})
    estimate = result.plan.options["estimate"]
    specs = {n: m.spec for n, m in result.fleet.targets().items()}
    report = run.apply(result.plan, run.Context(journal_path=tmp_path / "journal.jsonl"), fleet_dir, specs)
    assert report.ok
    assert estimate["calls"] == mutating(report.stats["aws/aws-eu"])
    assert estimate["binding"] == "RegisterCertificate" and estimate["bindingTps"] == 10
    # updates and deletes: attributes, a group move, a certificate status, a policy version, pruning
    spark = fleet_dir / "aws" / "springpark.yaml"
    text_ = spark.read_text()
    text_ = text_.replace("attributes: {serial: DA1275B0, site: paris}", "attributes: {serial: DA1275B0, site: lyon}")
    text_ = text_.replace(
        "status: ACTIVE\n  policies: [reader-policy]\n---\napiVersion: aws.fleetctl.io/v1\nkind: "
        "Certificate\nmetadata: {name: springpark-da1275b1",
        "status: INACTIVE\n  policies: [reader-policy]\n---\napiVersion: aws.fleetctl.io/v1\nkind: "
        "Certificate\nmetadata: {name: springpark-da1275b1",
        1,
    )
    text_ = text_.replace("Action: iot:Subscribe", "Action: [iot:Subscribe]")
    head, _, rest = text_.partition("apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {name: DA1275B2")
    spark.write_text(head.rstrip().rstrip("-").rstrip() + "\n")
    ctx = run.Context(journal_path=tmp_path / "journal.jsonl")
    second = run.plan(fleet_dir, ctx, targets={"aws-eu"}, prune=True)
    actions = {(c.kind, c.action.value) for c in second.plan.changes}
    assert {
        ("aws.Thing", "update"),
        ("aws.Thing", "delete"),
        ("aws.Certificate", "update"),
        ("aws.Policy", "update"),
    } <= actions, actions
    report = run.apply(second.plan, run.Context(journal_path=tmp_path / "journal.jsonl"), fleet_dir, specs)
    assert report.ok, report.failed
    assert second.plan.options["estimate"]["calls"] == mutating(report.stats["aws/aws-eu"])


def test_summary_and_estimate_in_text_and_markdown(aws_env, tmp_path, write):
    root = write(THINGSET, ["mac,site", *[f"{m},paris" for m in esp32_macs(600)]])
    result = run_cli("plan", str(root), "--summary", "--out", str(tmp_path / "plan.json"))
    assert result.exit_code == 0
    out = result.stdout
    lines = out.splitlines()
    table = lines[lines.index(next(line for line in lines if line.strip().startswith("kind"))) :]
    assert [row.split() for row in table[:6]] == [
        ["kind", "delete", "replace", "create", "update"],
        ["aws.Policy", ".", ".", "1", "."],
        ["aws.Thing", ".", ".", "600", "."],
        ["aws.ThingGroup", ".", ".", "1", "."],
        ["aws.ThingType", ".", ".", "1", "."],
        ["total", "0", "0", "603", "0"],
    ]
    assert "+ aws/aws-eu/Thing/" not in out  # one line per kind, not per device
    # 600 CreateThing and 600 AddThingToThingGroup at 100 TPS each need more than 8 changes in flight
    assert (
        "Apply: 1,204 API calls, about 7.5 s, bound by the changes in flight rather than a quota (raise "
        "FLEETCTL_WORKERS, default 8)."
    ) in out
    wider = run_cli("plan", str(root), "--summary", env={"FLEETCTL_WORKERS": "32"}).stdout
    # (CreateThing ties with AddThingToThingGroup; ties go to the first name. 0.17 s for the waves before the things)
    assert (
        "Apply: 1,204 API calls, about 6 s at default AWS quotas (bound by AddThingToThingGroup, 100/s; raise "
        "with Service Quotas L-2904683A)." in wider
    )
    plan = load_plan(str(tmp_path / "plan.json"))
    assert plan.options["estimate"]["calls"] == {
        "AddThingToThingGroup": 600,
        "AttachPolicy": 1,
        "CreateThing": 600,
        "CreatePolicy": 1,
        "CreateThingGroup": 1,
        "CreateThingType": 1,
    }
    # without --summary a plan above 500 changes starts with the table and still lists every change
    full = text(plan)
    assert full.index("  aws.Thing ") < full.index("  + aws/aws-eu/Thing/")
    assert full.count("  + aws/aws-eu/Thing/") == 600 and "more:" not in full
    md = markdown(plan)
    assert (
        "⏱️ Apply: 1,204 API calls, about 7.5 s, bound by the changes in flight" in md
        and "| aws.Thing |  |  | 600 |  |" in md
    )


def test_show_drills_into_one_device_or_a_glob(aws_env, tmp_path, write):
    root = write(THINGSET, ["mac,site", *[f"{m},paris" for m in esp32_macs(300)]])
    assert run_cli("plan", str(root), "--out", str(tmp_path / "plan.json")).exit_code == 0
    planfile = str(tmp_path / "plan.json")
    one = run_cli("show", planfile, "--address", "aws/aws-eu/Thing/esp32-240AC400012B")
    assert one.exit_code == 0
    assert one.stdout.splitlines()[0].startswith("1 of 303 change(s) of plan p-")
    assert "  + create aws/aws-eu/Thing/esp32-240AC400012B" in one.stdout
    assert "      source: fleet/devices.csv:301, template fleet/devices.yaml:9:18" in one.stdout
    assert "      planned against: absent" in one.stdout
    assert '      + attributes: {"site": "paris"}' in one.stdout
    assert "depends on: aws/aws-eu/ThingGroup/esp32-fleet, aws/aws-eu/ThingType/esp32" in one.stdout
    many = run_cli("show", planfile, "--address", "aws/aws-eu/Thing/esp32-240AC40000[0-1]?", "--format", "json")
    data = json.loads(many.stdout)
    assert data["matched"] == 32 and "formatVersion" not in data  # a selection is never a plan file
    assert {c["address"] for c in data["changes"]} == {f"aws/aws-eu/Thing/esp32-240AC40000{i:02X}" for i in range(32)}
    none = run_cli("show", planfile, "--address", "aws/aws-eu/Thing/nope*")
    assert none.exit_code == 1 and "no change of plan" in none.stderr
    summary = run_cli("show", planfile, "--summary")
    assert "aws.Thing" in summary.stdout and "+ aws/aws-eu/Thing" not in summary.stdout
    assert Path(planfile).read_text() == load_plan(planfile).dumps()
