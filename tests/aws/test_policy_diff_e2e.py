"""The policy-widening case of issue 12, end to end on moto: a statement added to a managed IoT policy (out of
band, or by a manifest change) is shown in full, key by key, in every view: `fleetctl drift` (text, markdown,
json), `fleetctl plan` (text, markdown, json) and `fleetctl show PLAN --address`; removing it shows as `-`.

Directions: a plan says what apply will do (actual → manifests), a drift report what moved outside fleetctl
(manifests → actual). An out-of-band added statement is `+` in drift and `-` in the plan (apply removes it);
a statement the manifests add is `+` in the plan, and once applied and removed out of band, `-` in drift.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
from botocore.config import Config

from tests.conftest import run_cli

POLICY = "aws/aws-eu/Policy/reader-policy"
WIDEN = {"Sid": "Widen", "Effect": "Allow", "Action": "iot:*", "Resource": "*"}
PATH = "document.Statement[Sid=Widen]"
WIDEN_YAML = '      - Sid: Widen\n        Effect: Allow\n        Action: iot:*\n        Resource: "*"\n'


def iot():
    return boto3.client("iot", region_name="eu-west-2", config=Config(retries={"total_max_attempts": 1}))


def set_document(edit) -> None:
    """Out of band: a new default version of reader-policy, `edit` applied to the current document."""
    c = iot()
    doc = json.loads(c.get_policy(policyName="reader-policy")["policyDocument"])
    edit(doc)
    for version in c.list_policy_versions(policyName="reader-policy")["policyVersions"]:
        if not version["isDefaultVersion"]:
            c.delete_policy_version(policyName="reader-policy", policyVersionId=version["versionId"])
    c.create_policy_version(policyName="reader-policy", policyDocument=json.dumps(doc), setAsDefault=True)


def block(out: str, header: str) -> list[str]:
    """The lines of one resource in a text or markdown view: from its header line to the next header."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if header in line)
    rest = []
    for line in lines[start + 1 :]:
        if re.match(r"^(  \S|[+!-] (create|update|delete|replace|aws/)|```|\|)", line) and POLICY not in line:
            break
        rest.append(line)
    return rest


def shows_in_full(lines: list[str], symbol: str) -> None:
    """Every key and value of the Widen statement is on lines led by `symbol` (after any indentation, or first
    in a markdown diff block), the path names it, and no line of the other sign mentions it."""
    signed = [line for line in lines if line.lstrip().startswith(symbol) or line.startswith(symbol)]
    text = "\n".join(signed)
    assert PATH in text, lines
    for key, value in WIDEN.items():
        assert f'"{key}": "{value}"' in text, (key, lines)
    other = "-" if symbol == "+" else "+"
    assert not [line for line in lines if line.lstrip().startswith(other) and "Widen" in line], lines


def test_a_widening_statement_is_shown_in_full_in_every_view(aws_env, fleet_dir: Path, tmp_path: Path) -> None:
    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0

    # 1. out of band, the policy gains {"Sid": "Widen", "Action": "iot:*", "Resource": "*"}
    set_document(lambda doc: doc["Statement"].append(dict(WIDEN)))

    drift = run_cli("drift", str(fleet_dir))
    assert drift.exit_code == 2, drift.output
    lines = block(drift.stdout, f"{POLICY}: differs")
    shows_in_full(lines, "+")  # added outside fleetctl
    assert len(lines) == len([line for line in lines if line.strip()]) and "…" not in drift.stdout

    md = run_cli("drift", str(fleet_dir), "--format", "markdown").stdout
    assert f"| `{POLICY}`  [!permissions-widened] | differs: 1 field change(s) |" in md
    shows_in_full(block(md, f"! {POLICY}"), "+")

    report = json.loads(run_cli("drift", str(fleet_dir), "--format", "json").stdout)
    (entry,) = [d for d in report["drift"] if d["address"] == POLICY]
    assert entry["fields"] == [
        {
            "drift": "added",
            "path": PATH,
            "segments": ["document", "Statement", {"key": "Sid", "value": "Widen"}],
            "manifest": None,
            "actual": WIDEN,
        }
    ]

    planfile = tmp_path / "plan.json"
    plan = run_cli("plan", str(fleet_dir), "--out", str(planfile))
    shows_in_full(block(plan.stdout, f"~ {POLICY}"), "-")  # apply removes it
    assert "step: create policy version" in plan.stdout
    shows_in_full(block(run_cli("plan", str(fleet_dir), "--format", "markdown").stdout, f"! update {POLICY}"), "-")
    as_json = json.loads(run_cli("plan", str(fleet_dir), "--format", "json").stdout)
    (change,) = [c for c in as_json["changes"] if c["address"] == POLICY]
    assert change["fields"] == [
        {
            "op": "remove",
            "path": PATH,
            "segments": ["document", "Statement", {"key": "Sid", "value": "Widen"}],
            "before": WIDEN,
            "after": None,
        }
    ]
    show = run_cli("show", str(planfile), "--address", POLICY)
    assert show.exit_code == 0, show.output
    shows_in_full(block(show.stdout, f"~ update {POLICY}"), "-")
    shows_in_full(
        block(run_cli("show", str(planfile), "--address", POLICY, "--format", "markdown").stdout, f"~ update {POLICY}"),
        "-",
    )

    # the saved plan, with its structured paths, is loadable and applies: the statement is gone again
    applied = run_cli("apply", str(planfile), "--fleet", str(fleet_dir))
    assert applied.exit_code == 0, applied.output
    assert "Widen" not in iot().get_policy(policyName="reader-policy")["policyDocument"]
    assert run_cli("drift", str(fleet_dir)).exit_code == 0

    # 2. a pull request adds the statement to the manifest: the plan shows it as + lines, in full
    spark = fleet_dir / "aws" / "springpark.yaml"
    text = spark.read_text()
    anchor = "    Statement:\n"
    assert text.count(anchor) == 1
    spark.write_text(text.replace(anchor, anchor + WIDEN_YAML))
    plan = run_cli("plan", str(fleet_dir), "--out", str(planfile))
    shows_in_full(block(plan.stdout, f"~ {POLICY}"), "+")
    shows_in_full(block(run_cli("plan", str(fleet_dir), "--format", "markdown").stdout, f"! update {POLICY}"), "+")
    (change,) = [
        c
        for c in json.loads(run_cli("plan", str(fleet_dir), "--format", "json").stdout)["changes"]
        if c["address"] == POLICY
    ]
    assert [(f["op"], f["path"], f["after"]) for f in change["fields"]] == [("add", PATH, WIDEN)]
    shows_in_full(block(run_cli("show", str(planfile), "--address", POLICY).stdout, f"~ update {POLICY}"), "+")
    assert run_cli("apply", str(planfile), "--fleet", str(fleet_dir)).exit_code == 0

    # 3. the reverse edit, out of band: the statement is removed again; drift shows it as - lines (the manifest
    # has it, the actual state does not), and the plan as + lines (apply restores it)
    set_document(lambda doc: doc.update(Statement=[s for s in doc["Statement"] if s.get("Sid") != "Widen"]))
    drift = run_cli("drift", str(fleet_dir))
    assert drift.exit_code == 2
    shows_in_full(block(drift.stdout, f"{POLICY}: differs"), "-")
    shows_in_full(block(run_cli("drift", str(fleet_dir), "--format", "markdown").stdout, f"! {POLICY}"), "-")
    (entry,) = json.loads(run_cli("drift", str(fleet_dir), "--format", "json").stdout)["drift"]
    assert [(f["drift"], f["path"], f["manifest"], f["actual"]) for f in entry["fields"]] == [
        ("removed", PATH, WIDEN, None)
    ]
    shows_in_full(block(run_cli("plan", str(fleet_dir)).stdout, f"~ {POLICY}"), "+")


def test_reordered_statements_and_resources_are_no_change(aws_env, fleet_dir: Path) -> None:
    """Statements are matched by Sid or content, and a statement's Resource list is a set: an out-of-band
    version that only reorders them is no drift."""
    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0

    def shuffle(doc: dict) -> None:
        doc["Statement"].reverse()
        for statement in doc["Statement"]:
            if isinstance(statement["Resource"], list):
                statement["Resource"].reverse()

    set_document(shuffle)
    res = run_cli("drift", str(fleet_dir))
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("In sync")
