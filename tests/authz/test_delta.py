"""permission_delta on desired/actual lists built here: policy document, attachment, group membership and
certificate status changes; folding of many things; drift direction."""

from __future__ import annotations

import time

from engine.authz.delta import permission_delta
from engine.model import ActualResource, DesiredResource
from tests.authz.helpers import ARN, TARGETS, allow, cert, deny, group, policy_res, thing

TN = "${iot:Connection.Thing.ThingName}"
SCOPED = [allow("iot:Connect", ARN + f"client/{TN}"), allow("iot:Publish", ARN + f"topic/dt/{TN}/*")]


def actual_of(resources: list[DesiredResource]) -> list[ActualResource]:
    return [ActualResource(r.address, r.kind, r.spec) for r in resources]


def fleet(n: int, statements, *, member=True, extra=()) -> list[DesiredResource]:
    return [
        policy_res("p", *statements),
        group("g", policies=["p"]),
        *extra,
        *[thing(f"esp32-{i:05d}", groups=["g"] if member else []) for i in range(n)],
    ]


def test_no_change_no_delta():
    desired = fleet(10, SCOPED)
    assert permission_delta(desired, actual_of(desired), targets=TARGETS) == []


def test_widening_a_policy_is_summarised_once_for_every_thing():
    before = fleet(1204, SCOPED)
    after = fleet(1204, [SCOPED[0], allow("iot:Publish", ARN + "topic/*")])
    started = time.perf_counter()
    [d] = permission_delta(after, actual_of(before), targets=TARGETS)
    assert time.perf_counter() - started < 10
    assert d.action == "iot:Publish" and d.change == "widens" and d.count == 1204
    assert d.summary == (
        "widens iot:Publish for 1,204 thing(s): now * instead of dt/${thing}/* (policy 'p' document changed)"
    )
    assert d.newly_allowed == ("*",) and d.newly_denied == ()
    assert d.example == "esp32-00000 may now iot:Publish x"


def test_adding_a_deny_narrows_with_an_example():
    before = fleet(3, SCOPED)
    after = fleet(3, SCOPED + [deny("iot:Publish", ARN + "topic/dt/*/debug")])
    [d] = permission_delta(after, actual_of(before), targets=TARGETS)
    assert d.change == "narrows" and d.newly_denied == ("denied: dt/*/debug",)
    assert d.example == "esp32-00000 may no longer iot:Publish dt/esp32-00000/debug"


def test_group_membership_change():
    before = fleet(2, SCOPED, member=False)
    after = fleet(2, SCOPED)
    deltas = permission_delta(after, actual_of(before), targets=TARGETS)
    assert {d.action for d in deltas} == {"iot:Connect", "iot:Publish"}
    assert all(d.causes == ("policy 'p' now in effect",) and d.count == 2 and d.change == "widens" for d in deltas)


def test_parent_group_policy_attachment_reaches_child_group_things():
    base = [policy_res("p", *SCOPED), group("parent"), thing("t1", groups=["child"])]
    before = base + [group("child", parent="parent")]
    after = [
        policy_res("p", *SCOPED),
        group("parent", policies=["p"]),
        group("child", parent="parent"),
        thing("t1", groups=["child"]),
    ]
    deltas = permission_delta(after, actual_of(before), targets=TARGETS)
    assert deltas and all(d.things == ("t1",) for d in deltas)


def test_certificate_deactivation_narrows_everything():
    base = [policy_res("p", *SCOPED), thing("t1", principals=["c1"])]
    before = base + [cert("c1", policies=["p"])]
    after = base + [cert("c1", policies=["p"], status="INACTIVE")]
    deltas = permission_delta(after, actual_of(before), targets=TARGETS)
    assert {d.change for d in deltas} == {"narrows"}
    assert all("certificate 'c1' is INACTIVE" in d.causes[0] for d in deltas)


def test_drift_direction_reads_the_other_way():
    manifests = fleet(2, SCOPED)
    account = fleet(2, [allow("iot:*", "*")])
    deltas = permission_delta(account, actual_of(manifests), targets=TARGETS)  # what the account allows beyond
    assert deltas and all(d.change == "widens" for d in deltas)


def test_without_target_specs_region_and_account_come_from_the_policies():
    eu = "arn:aws:iot:eu-west-2:210987654321:"
    before = [
        policy_res("p", allow("iot:Publish", eu + f"topic/dt/{TN}/*")),
        group("g", policies=["p"]),
        thing("t1", groups=["g"]),
    ]
    after = [
        policy_res("p", allow("iot:Publish", eu + "topic/dt/*")),
        group("g", policies=["p"]),
        thing("t1", groups=["g"]),
    ]
    [d] = permission_delta(after, actual_of(before))
    assert d.after.allow == ("dt/*",) and d.example == "t1 may now iot:Publish dt/x"


def test_policy_change_over_attribute_scoped_things_is_one_line_and_a_move_is_exact():
    site = allow("iot:Publish", ARN + "topic/site/${iot:Connection.Thing.Attributes[site]}/*")

    def fleet_of(statements, sites):
        return [
            policy_res("p", *statements),
            group("g", policies=["p"]),
            *[thing(f"t{i}", groups=["g"], attributes={"site": s}) for i, s in enumerate(sites)],
        ]

    sites = ["paris", "lyon", "nice"] * 10
    [d] = permission_delta(fleet_of([SCOPED[1], site], sites), actual_of(fleet_of([SCOPED[1]], sites)), targets=TARGETS)
    assert d.count == 30 and d.after.allow == ("dt/${thing}/*", "site/${Thing.Attributes[site]}/*")
    assert d.example == "t0 may now iot:Publish site/paris/x"
    moved = sites[:]
    moved[0] = "lyon"
    [d] = permission_delta(fleet_of([site], moved), actual_of(fleet_of([site], sites)), targets=TARGETS)
    assert d.things == ("t0",) and d.change == "changes" and d.causes == ("thing type or attributes changed",)
    assert d.before.allow == ("site/paris/*",) and d.after.allow == ("site/lyon/*",)
