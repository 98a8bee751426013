"""The planner is a pure function: plain desired/actual data in, an ordered Plan out (paired fixtures)."""

from __future__ import annotations

import random

import pytest

from engine import kinds
from engine.diff import diff_fields
from engine.model import Action, ActualResource, Address, DesiredResource
from engine.plan.model import plan_from_json
from engine.plan.planner import PlanOptions, plan
from engine.plan.render import markdown, text

OPTS = PlanOptions(created_at="2026-11-21T10:00:00Z", desired_digest="sha256:x")


def a(kind: str, name: str, target: str = "aws-eu") -> Address:
    return Address.of("aws", target, kind, name)


def want(kind: str, name: str, spec: dict, deps=(), inputs=None) -> DesiredResource:
    return DesiredResource(a(kind, name), f"aws.{kind}", spec, depends_on=tuple(deps), inputs=inputs or {})


def have(kind: str, name: str, state: dict, managed: bool = True, token: str = "") -> ActualResource:
    return ActualResource(a(kind, name), f"aws.{kind}", state, token=token, managed=managed)


FLEET = [
    want("Thing", "t1", {"thingType": "tt", "principals": ["c1"]}, [a("ThingType", "tt"), a("Certificate", "c1")]),
    want(
        "Certificate",
        "c1",
        {"certificateId": "ab", "status": "ACTIVE", "policies": ["p"]},
        [a("Policy", "p"), a("CACertificate", "ca")],
    ),
    want("Policy", "p", {"document": {"Statement": []}, "keepVersions": 5}),
    want(
        "CACertificate",
        "ca",
        {"certificateId": "cd", "status": "ACTIVE", "autoRegistration": "DISABLE"},
        inputs={"certificateMode": "SNI_ONLY"},
    ),
    want("ThingType", "tt", {"description": "x"}),
]


def test_create_order_follows_dependencies_then_rank_then_address():
    p = plan(FLEET, [], OPTS)
    assert [str(c.address).split("/", 2)[2] for c in p.changes] == [
        "CACertificate/ca",
        "Policy/p",
        "Certificate/c1",
        "ThingType/tt",
        "Thing/t1",
    ]
    assert all(c.action is Action.CREATE for c in p.changes)


def test_same_inputs_same_plan_bytes_whatever_the_input_order():
    shuffled = FLEET[:]
    random.Random(7).shuffle(shuffled)
    assert plan(FLEET, [], OPTS).dumps() == plan(shuffled, [], OPTS).dumps()


def test_plan_file_round_trip():
    p = plan(FLEET, [], OPTS)
    again = plan_from_json(p.to_json())
    assert again.dumps() == p.dumps()


def test_in_sync_is_no_op_and_not_listed():
    actual = [have(d.address.parts[2], d.address.name, dict(d.spec)) for d in FLEET]
    assert plan(FLEET, actual, OPTS).changes == ()


def test_update_lists_field_changes_and_records_the_fingerprint():
    actual = [
        have("ThingType", "tt", {"description": "x"}),
        have("Thing", "t1", {"thingType": "tt", "principals": ["c0"], "attributes": {"a": "1"}}, token="v3"),
    ]
    p = plan([FLEET[0], FLEET[4]], actual, OPTS)
    (change,) = p.changes
    assert change.action is Action.UPDATE
    # principals are a set: one member removed, one added (not the whole list replaced)
    assert [(f.op, f.path, f.before, f.after) for f in change.fields] == [
        ("remove", "principals[]", "c0", None),
        ("add", "principals[]", None, "c1"),
    ]
    assert change.fingerprint == actual[1].fingerprint and change.fingerprint.startswith("v3:")


def test_immutable_field_means_replace_with_reason():
    actual = [have("Certificate", "c1", {"certificateId": "zz", "status": "ACTIVE", "policies": ["p"]})]
    (change,) = [c for c in plan([FLEET[1]], actual, OPTS).changes]
    assert change.action is Action.REPLACE
    assert change.reason == "certificateId cannot be updated in place"


def test_deletes_only_managed_and_only_with_prune_in_reverse_order():
    actual = [
        have("Thing", "old", {"principals": ["oldcert"], "thingType": "tt"}),
        have("Certificate", "oldcert", {"status": "ACTIVE", "policies": ["p"]}),
        have("Policy", "p", {"document": {"Statement": []}, "keepVersions": 5}),
        have("Thing", "console", {}, managed=False),
    ]
    no_prune = plan([], actual, OPTS)
    assert no_prune.changes == ()
    assert {d.address for d in no_prune.diagnostics} == {
        "aws/aws-eu/Thing/old",
        "aws/aws-eu/Certificate/oldcert",
        "aws/aws-eu/Policy/p",
    }
    assert no_prune.unmanaged == ("aws/aws-eu/Thing/console",)
    pruned = plan([], actual, PlanOptions(prune_targets=frozenset({"aws-eu"})))
    assert [str(c.address).split("/", 2)[2] for c in pruned.changes] == ["Thing/old", "Certificate/oldcert", "Policy/p"]
    assert pruned.unmanaged == ("aws/aws-eu/Thing/console",)


@pytest.mark.parametrize(
    "desired,actual,expected",
    [
        ({"attributes": {"a": "1"}}, {"attributes": {"a": "1", "b": "2"}}, [("attributes.b", "2", None)]),
        ({"attributes": {"a": "2"}}, {"attributes": {"a": "1"}}, [("attributes.a", "1", "2")]),
        ({"groups": ["x", "y"]}, {"groups": ["x"]}, [("groups[]", None, "y")]),  # a set: one member added
        ({"thingType": None}, {"thingType": "tt"}, [("thingType", "tt", None)]),
        ({"attributes": {}}, {}, []),
    ],
)
def test_field_diff_owns_whole_maps(desired, actual, expected):
    got = diff_fields(desired, actual, kinds.by_qualified("aws.Thing"))
    assert [(f.path, f.before, f.after) for f in got] == expected


def test_partial_maps_and_sensitive_fields():
    decl = kinds.KindDecl("x.fleetctl.io", "X", "x", dict, partial_maps=("desired",), sensitive=("key",))
    got = diff_fields(
        {"desired": {"a": 1}, "key": "sha256:new"}, {"desired": {"a": 2, "other": 3}, "key": "sha256:old"}, decl
    )
    assert [(f.path, f.before, f.after, f.sensitive) for f in got] == [
        ("desired.a", 2, 1, False),
        ("key", "(sensitive)", "(sensitive)", True),
    ]


def test_renderers_are_views_of_the_same_plan():
    p = plan(FLEET, [], OPTS)
    t, md = text(p), markdown(p)
    assert "Plan: 5 to create, 0 to update, 0 to replace, 0 to delete." in t
    assert "+ aws/aws-eu/Thing/t1" in t
    assert "<!-- fleetctl-plan -->" in md and "aws.Thing" in md


def test_dependency_cycle_is_a_diagnostic_not_a_crash():
    x = want("ThingGroup", "x", {"parent": "y"}, [a("ThingGroup", "y")])
    y = want("ThingGroup", "y", {"parent": "x"}, [a("ThingGroup", "x")])
    p = plan([x, y], [], OPTS)
    assert any("dependency cycle" in d.summary for d in p.diagnostics)


def test_impossible_change_is_blocked_and_the_rest_is_still_planned():
    ca = want("CACertificate", "ca", {"certificateId": "cd", "status": "ACTIVE"}, inputs={"certificateMode": "DEFAULT"})
    p = plan([ca, FLEET[4]], [], OPTS)
    assert [str(c.address) for c in p.changes] == ["aws/aws-eu/ThingType/tt"]
    (blocked,) = p.blocked  # part of the plan, with a reason and what a person must do
    assert str(blocked.address) == "aws/aws-eu/CACertificate/ca" and blocked.field == "verificationCertificatePem"
    assert "needs verificationCertificatePem" in blocked.reason and "declare it" in blocked.remedy
    assert p.errored and p.status == "errored"
