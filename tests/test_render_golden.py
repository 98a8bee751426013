"""Golden files of every view of a plan (issue 12 §1): nested and list changes diffed to the leaf, a 40-element
list with one element changed, long values folded, sensitive values masked, and a markdown plan that must
shrink. The plans come from the pure planner over the real kind declarations; the views are compared byte for
byte with tests/golden/render/. Regenerate after an intended change with

    FLEETCTL_UPDATE_GOLDEN=1 python -m pytest tests/test_render_golden.py

and review the diff of the golden files like any other change.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from engine.diagnostics import Source
from engine.model import SENSITIVE, ActualResource, Address, DesiredResource
from engine.plan import drilldown
from engine.plan.driftview import drift_report
from engine.plan.fieldview import FOLD
from engine.plan.model import Plan, load_plan, plan_from_json
from engine.plan.planner import PlanOptions, plan
from engine.plan.render import as_json, drop_order, markdown, text

GOLDEN = Path(__file__).parent / "golden" / "render"
UPDATE = os.environ.get("FLEETCTL_UPDATE_GOLDEN") == "1"
OPTS = PlanOptions(git_commit="c0ffee" + "0" * 34, created_at="2026-12-03T08:00:00Z", desired_digest="sha256:g")


def golden(name: str, output: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(output.encode("utf-8"))
        return
    assert path.exists(), f"{path} is missing: run with FLEETCTL_UPDATE_GOLDEN=1 and review it"
    assert output == path.read_bytes().decode("utf-8"), f"{name} differs from its golden file"


def aws(kind: str, name: str) -> Address:
    return Address.of("aws", "aws-eu", kind, name)


def pair(address: Address, kind: str, desired: dict, actual: dict, line: int) -> tuple[DesiredResource, ActualResource]:
    return (
        DesiredResource(address, kind, desired, Source("fleet/golden.yaml", line, 1)),
        ActualResource(address, kind, actual, token="7", managed=True),
    )


def statement(sid: str | None, action, resource) -> dict:
    return {**({"Sid": sid} if sid else {}), "Effect": "Allow", "Action": action, "Resource": resource}


ARN = "arn:aws:iot:eu-west-2:123456789012:topic/springcard/springcore/${iot:Connection.Thing.ThingName}"


def nested_pairs() -> list[tuple[DesiredResource, ActualResource]]:
    read = statement("Read", ["iot:Receive", "iot:Subscribe"], [ARN + "/*"])
    connect = statement(None, "iot:Connect", "arn:aws:iot:eu-west-2:123456789012:client/${iot:ClientId}")
    publish = statement(None, "iot:Publish", [ARN + "/telemetry"])
    policy_want = {"document": {"Version": "2012-10-17", "Statement": [connect, read, publish]}, "keepVersions": 3}
    policy_have = {
        "document": {
            "Version": "2012-10-17",
            "Statement": [
                {**read, "Action": ["iot:Subscribe"]},  # Receive added by the manifest
                statement("Widen", "iot:*", "*"),  # added out of band
                connect,  # moved: no change
                statement(None, "iot:Publish", [ARN + "/#"]),
            ],
        },  # a Sid-less statement changed
        "keepVersions": 3,
    }
    rule_want = {
        "sql": "SELECT * FROM 'springcard/+/telemetry'",
        "awsIotSqlVersion": "2016-03-23",
        "ruleDisabled": False,
        "actions": [
            {"lambda": {"functionArn": "arn:aws:lambda:eu-west-2:123456789012:function:ingest-v2"}},
            {
                "s3": {
                    "bucketName": "telemetry-archive",
                    "key": "${topic()}/${timestamp()}",
                    "roleArn": "arn:aws:iam::123456789012:role/rules",
                }
            },
        ],
    }
    rule_have = {
        **rule_want,
        "actions": [
            {"lambda": {"functionArn": "arn:aws:lambda:eu-west-2:123456789012:function:ingest"}},
            {"republish": {"topic": "debug/${topic()}", "roleArn": "arn:aws:iam::123456789012:role/rules"}},
        ],
    }
    twin_want = {
        "status": "enabled",
        "tags": {"site": "paris"},
        "desired": {"telemetry": {"interval": 30, "channels": ["temp", "rh"]}, "fw": {"version": "2.1"}},
    }
    twin_have = {
        "status": "enabled",
        "tags": {"site": "paris", "owner": "ops"},
        "desired": {"telemetry": {"interval": 60, "channels": ["temp"]}, "fw": {"version": "2.1"}, "legacy": True},
    }
    template_want = {
        "templateBody": {
            "Parameters": {"ThingName": {"Type": "String"}},
            "Resources": {
                "thing": {
                    "Type": "AWS::IoT::Thing",
                    "Properties": {"ThingName": {"Ref": "ThingName"}, "ThingGroups": ["readers"]},
                }
            },
        },
        "provisioningRoleArn": "arn:aws:iam::123456789012:role/provisioning",
        "enabled": True,
        "type": "FLEET_PROVISIONING",
    }
    template_have = json.loads(json.dumps(template_want))
    template_have["templateBody"]["Resources"]["thing"]["Properties"]["ThingGroups"] = ["readers", "all"]
    template_have["templateBody"]["Resources"]["policy"] = {
        "Type": "AWS::IoT::Policy",
        "Properties": {"PolicyName": "reader-policy"},
    }
    thing_want = {
        "thingType": "springpark",
        "attributes": {"serial": "DA1275B0", "site": "paris"},
        "groups": ["floor-1", "readers"],
        "principals": ["cert-b0"],
    }
    thing_have = {
        "thingType": "springpark",
        "attributes": {"serial": "DA1275B0", "site": "lyon"},
        "groups": ["floor-2", "readers"],
        "principals": ["cert-b0", "cert-old"],
    }
    return [
        pair(aws("Policy", "reader-policy"), "aws.Policy", policy_want, policy_have, 10),
        pair(aws("TopicRule", "telemetry"), "aws.TopicRule", rule_want, rule_have, 40),
        pair(Address.of("azure", "azure-prod", "Device", "gw-1"), "azure.Device", twin_want, twin_have, 60),
        pair(aws("ProvisioningTemplate", "fleet"), "aws.ProvisioningTemplate", template_want, template_have, 80),
        pair(aws("Thing", "DA1275B0"), "aws.Thing", thing_want, thing_have, 100),
    ]


def build(pairs: list[tuple[DesiredResource, ActualResource]]) -> Plan:
    return plan([d for d, _ in pairs], [a for _, a in pairs], OPTS)


def all_views(name: str, p: Plan, pattern: str) -> None:
    golden(f"{name}.plan.txt", text(p))
    golden(f"{name}.plan.md", markdown(p))
    golden(f"{name}.plan.json", as_json(p))
    golden(f"{name}.drift.txt", drift_report(p, "text"))
    golden(f"{name}.drift.md", drift_report(p, "markdown"))
    golden(f"{name}.drift.json", drift_report(p, "json"))
    selected = drilldown.select(p, [pattern])
    golden(f"{name}.show.txt", drilldown.render(p, [pattern], selected))
    golden(f"{name}.show.md", drilldown.render(p, [pattern], selected, "markdown"))


def test_nested_and_list_changes_to_the_leaf() -> None:
    p = build(nested_pairs())
    all_views("nested", p, "aws/aws-eu/*")
    by = {str(c.address).rsplit("/", 1)[1]: [(f.op, f.path) for f in c.fields] for c in p.changes}
    assert by["reader-policy"] == [  # removed elements first, then the new list's elements in order
        ("remove", "document.Statement[Sid=Widen]"),
        ("remove", "document.Statement[]"),
        ("add", "document.Statement[Sid=Read].Action[]"),
        ("add", "document.Statement[]"),
    ]
    assert by["telemetry"] == [
        ("remove", "actions[republish]"),
        ("change", "actions[lambda].lambda.functionArn"),
        ("add", "actions[s3]"),
    ]
    assert by["gw-1"] == [("add", "desired.telemetry.channels[1]"), ("change", "desired.telemetry.interval")]
    assert by["fleet"] == [
        ("remove", "templateBody.Resources.policy"),
        ("remove", "templateBody.Resources.thing.Properties.ThingGroups[1]"),
    ]
    assert by["DA1275B0"] == [
        ("change", "attributes.site"),
        ("remove", "groups[]"),
        ("add", "groups[]"),
        ("remove", "principals[]"),
    ]
    # the plan file keeps the structured paths and loads back to the same changes
    again = plan_from_json(json.loads(p.dumps()))
    assert again.changes == p.changes and again.dumps() == p.dumps()


def forty(changed: int | None) -> list[dict]:
    return [{"at": f"{h:02d}:00", "interval": 60 if h == changed else 30} for h in range(40)]


def test_one_changed_element_of_a_forty_element_list_is_one_line() -> None:
    address = Address.of("azure", "azure-prod", "Device", "gw-2")
    p = build(
        [pair(address, "azure.Device", {"desired": {"schedule": forty(None)}}, {"desired": {"schedule": forty(17)}}, 5)]
    )
    (change,) = p.changes
    assert [(f.op, f.path, f.before, f.after) for f in change.fields] == [
        ("change", "desired.schedule[17].interval", 60, 30)
    ]
    out = text(p)
    changed = [line for line in out.splitlines() if line.lstrip().startswith(("+", "-", "~ desired"))]
    assert changed == ["      ~ desired.schedule[17].interval: 60 → 30"]
    all_views("list40", p, str(address))


LONG_SQL = (
    "SELECT temperature, humidity, battery, rssi, topic(3) AS device, timestamp() AS at FROM "
    "'springcard/springcore/+/telemetry' WHERE temperature > 45 OR humidity > 90 OR battery < 10 OR "
    "(rssi < -100 AND get(get_thing_shadow(topic(3), 'arn:aws:iam::123456789012:role/rules'), "
    "'state.reported.alarm') = true)"
)


def test_long_values_are_folded_never_cut() -> None:
    rule = aws("TopicRule", "alarms")
    want = {
        "sql": LONG_SQL,
        "description": "Alarms from the readers.\nOwner: ops\nRunbook: RB-12\n",
        "awsIotSqlVersion": "2016-03-23",
        "ruleDisabled": False,
        "actions": [],
    }
    have = {**want, "sql": LONG_SQL.replace("> 45", "> 50"), "description": "Alarms from the readers.\nOwner: dev\n"}
    p = build([pair(rule, "aws.TopicRule", want, have, 7)])
    created = plan([DesiredResource(aws("TopicRule", "alarms2"), "aws.TopicRule", want)], [], OPTS)
    all_views("long", p, str(rule))
    golden("long-create.plan.txt", text(created))
    for out in (text(p), markdown(p), drift_report(p, "text"), drift_report(p, "markdown"), text(created)):
        assert "…" not in out
        assert all(len(line) <= FOLD + 12 for line in out.splitlines() if "SELECT" in line), out
    # the folded pieces of the SQL, joined, are the exact statement (the two-space continuation indent aside)
    lines = text(p).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "~ sql:")
    plus = [line.split("+", 1)[1] for line in lines[start + 1 :] if line.lstrip().startswith("+")]
    assert json.loads("".join(_pieces(plus))) == LONG_SQL


def _pieces(lines: list[str]) -> list[str]:
    """The folded pieces of one value: the first line without its indentation, continuations without theirs."""
    first = lines[0]
    lead = len(first) - len(first.lstrip(" "))
    return [first.lstrip(" ")] + [line[lead + 2 :] for line in lines[1:]]


def test_sensitive_values_stay_masked_in_every_view() -> None:
    device = Address.of("azure", "azure-prod", "Device", "gw-3")
    want = {
        "primaryKey": "sha256:" + "1" * 64,
        "secondaryKey": "sha256:" + "2" * 64,
        "status": "enabled",
        "authentication": {"type": "symmetricKey"},
    }
    have = {
        "primaryKey": "sha256:" + "9" * 64,
        "secondaryKey": "sha256:" + "2" * 64,
        "status": "disabled",
        "authentication": {"type": "symmetricKey"},
    }
    p = build([pair(device, "azure.Device", want, have, 3)])
    created = plan(
        [DesiredResource(Address.of("azure", "azure-prod", "Device", "gw-4"), "azure.Device", want)], [], OPTS
    )
    all_views("sensitive", p, str(device))
    golden("sensitive-create.plan.txt", text(created))
    fields = [json.dumps(c["fields"]) for view in (as_json(p), as_json(created)) for c in json.loads(view)["changes"]]
    fields += [json.dumps(d["fields"]) for d in json.loads(drift_report(p, "json"))["drift"]]
    views = [
        text(p),
        markdown(p),
        drift_report(p, "text"),
        drift_report(p, "markdown"),
        drilldown.render(p, [str(device)], list(p.changes)),
        text(created),
        *fields,
    ]
    for out in views:  # (the plan file's desired state holds fingerprints, as before; never in a field)
        assert "1111" not in out and "9999" not in out and SENSITIVE in out, out


def test_markdown_that_must_shrink_drops_whole_resources_and_says_so(tmp_path: Path) -> None:
    pairs = []
    for i in range(60):
        address = aws("Thing", f"T{i:03d}")
        want = {"attributes": {"serial": f"SN{i:03d}", "site": "paris", "note": "n" * 150}}
        pairs.append(
            pair(address, "aws.Thing", want, {**want, "attributes": {**want["attributes"], "site": "lyon"}}, i + 1)
        )
    creates = [
        DesiredResource(aws("Thing", f"N{i:03d}"), "aws.Thing", {"attributes": {"note": "c" * 300}}) for i in range(40)
    ]
    deletes = [
        ActualResource(
            aws("Policy", f"P{i:02d}"), "aws.Policy", {"document": {"Statement": []}}, token="1", managed=True
        )
        for i in range(5)
    ]
    p = plan(
        [d for d, _ in pairs] + creates,
        [a for _, a in pairs] + deletes,
        PlanOptions(
            prune_targets=frozenset({"aws-eu"}),
            git_commit=OPTS.git_commit,
            created_at=OPTS.created_at,
            desired_digest="sha256:g",
        ),
    )
    full = markdown(p, budget=10**9)
    small = markdown(p, budget=12000)
    golden("shrink.plan.md", small)
    assert len(small) <= 12000 < len(full)
    m = re.search(
        r"_(\d+) of 105 change\(s\) are left out above to fit one comment \(whole changes, creates first, "
        r"then updates, replaces and deletes, each from the end of the plan, changes flagged under Needs attention "
        r"last\); the full plan is in the "
        r"workflow artifact `fleetctl-plan-c0ffee0+` \(`fleetctl show plan.json`\)\._",
        small,
    )
    assert m, small
    dropped = int(m.group(1))
    listed = re.findall(r"^[+!-] (?:create|update|delete|replace) (\S+)", small, re.M)
    assert len(listed) == 105 - dropped and all(f"/Policy/P0{i}" in small for i in range(5))
    order = [str(p.changes[i].address) for i in drop_order(p.changes)]
    assert set(order[:dropped]) == {str(c.address) for c in p.changes} - set(listed)  # in the stated order
    assert any("/Thing/N" in a for a in order[:dropped]) and not any("/Thing/T" in a for a in order[:dropped])
    # every change still listed is complete: its block is the same as in the unshrunk comment
    for address in listed:
        assert _change_block(small, address) == _change_block(full, address)
    assert "…" not in small.replace("… and", "")  # counts only, never a cut value


def _change_block(md: str, address: str) -> list[str]:
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^[+!-] \w+ {re.escape(address)}\b", line))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if re.match(r"^([+!-] (create|update|delete|replace) |`{3,}|…)", line):
            break
        block.append(line)
    return block


def test_golden_files_are_byte_stable(tmp_path: Path) -> None:
    """Two plans of the same inputs render the same bytes (the clock and ids are injected)."""
    assert text(build(nested_pairs())) == text(build(nested_pairs()))
    assert markdown(build(nested_pairs())) == markdown(build(nested_pairs()))
    saved = tmp_path / "plan.json"
    saved.write_text(build(nested_pairs()).dumps())
    assert load_plan(str(saved)).dumps() == saved.read_text()
