"""Effective policy sets from desired resources: certificates, inherited thing-group policies, client id rules,
certificate status and certificate subject fields from a real PEM; the matrix folding; cross-device proofs."""

from __future__ import annotations

from engine.authz import AuthzFleet, Decision, check
from engine.authz.crossdevice import cross_device
from engine.authz.matrix import matrix
from engine.authz.principals import all_connections, fold
from engine.sandbox.certs import issue, make_ca
from tests.authz.helpers import ARN, TARGET, TARGETS, allow, cert, deny, group, policy_res, thing

TN = "${iot:Connection.Thing.ThingName}"
SCOPED = policy_res(
    "scoped",
    allow("iot:Connect", ARN + f"client/{TN}"),
    allow(["iot:Publish", "iot:Receive"], ARN + f"topic/dt/{TN}/*"),
    allow("iot:Subscribe", ARN + f"topicfilter/dt/{TN}/*"),
)


def build(*resources):
    return AuthzFleet.build(resources, targets=TARGETS)


def decide(fleet, name, action, resource, client_id=None):
    answers = check(fleet, name, TARGET, action, ARN + resource, client_id)
    return [a.result.decision for a in answers]


def test_group_policies_inherit_from_parents():
    f = build(
        SCOPED,
        group("all", policies=["scoped"]),
        group("paris", parent="all"),
        thing("t1", groups=["paris"], principals=["c1"]),
        cert("c1"),
    )
    assert decide(f, "t1", "iot:Publish", "topic/dt/t1/x") == [Decision.ALLOW]
    assert decide(f, "t1", "iot:Publish", "topic/dt/t2/x") == [Decision.IMPLICIT_DENY]


def test_group_policies_need_the_client_id_to_be_the_thing_name():
    """AWS IoT Core policies: for a thing group policy to take effect, the clientId and the thing name must match."""
    f = build(SCOPED, group("all", policies=["scoped"]), thing("t1", groups=["all"], principals=["c1"]), cert("c1"))
    assert decide(f, "t1", "iot:Connect", "client/t1") == [Decision.ALLOW]
    assert decide(f, "t1", "iot:Connect", "client/other", client_id="other") == [Decision.IMPLICIT_DENY]


def test_certificate_policies_apply_whatever_the_client_id_and_thing_resolves_exclusively():
    f = build(SCOPED, thing("t1", principals=["c1"]), cert("c1", policies=["scoped"]))
    # exclusive association: ThingName resolves from the certificate even with another client id
    assert decide(f, "t1", "iot:Publish", "topic/dt/t1/x", client_id="other") == [Decision.ALLOW]


def test_non_exclusive_certificate_resolves_the_thing_by_client_id():
    f = build(
        SCOPED,
        thing("t1", principals=["shared"]),
        thing("t2", principals=["shared"]),
        cert("shared", policies=["scoped"]),
    )
    assert decide(f, "t1", "iot:Publish", "topic/dt/t1/x") == [Decision.ALLOW]
    # client id names neither thing: the thing variables do not resolve
    assert decide(f, "t1", "iot:Publish", "topic/dt/t1/x", client_id="x") == [Decision.IMPLICIT_DENY]


def test_inactive_or_revoked_certificate_is_refused():
    f = build(
        policy_res("all", allow("*", "*")),
        thing("t1", principals=["c1", "c2"]),
        cert("c1", policies=["all"], status="INACTIVE"),
        cert("c2", policies=["all"]),
    )
    assert decide(f, "t1", "iot:Publish", "topic/x") == [Decision.IMPLICIT_DENY, Decision.ALLOW]


def test_group_deny_neutralises_certificate_allow_in_the_fleet():
    f = build(
        policy_res("cert-pol", allow("iot:Publish", "*")),
        policy_res("group-pol", deny("iot:Publish", ARN + "topic/cmd/*")),
        group("g", policies=["group-pol"]),
        thing("t1", groups=["g"], principals=["c1"]),
        cert("c1", policies=["cert-pol"]),
    )
    [answer] = check(f, "t1", TARGET, "iot:Publish", ARN + "topic/cmd/x")
    assert answer.result.decision is Decision.EXPLICIT_DENY and answer.result.deciding[0].policy == "group-pol"


def test_thing_without_certificate_is_a_provisioned_connection():
    f = build(SCOPED, group("g", policies=["scoped"]), thing("t1", groups=["g"]))
    assert decide(f, "t1", "iot:Publish", "topic/dt/t1/x") == [Decision.ALLOW]


def test_certificate_subject_from_the_pem():
    ca = make_ca()
    dev = issue({"CN": "t1", "O": "Acme", "OU": "sensors"}, ca)
    pol = policy_res(
        "by-cn",
        allow("iot:Publish", ARN + "topic/${iot:Certificate.Subject.CommonName}/*"),
        allow(
            "iot:Publish",
            ARN + "topic/org/*",
            Condition={"StringEquals": {"iot:Certificate.Issuer.Organization": "SpringCard"}},
        ),
    )
    f = build(pol, thing("t1", principals=["c1"]), cert("c1", policies=["by-cn"], pem=dev.pem))
    assert decide(f, "t1", "iot:Publish", "topic/t1/x") == [Decision.ALLOW]
    assert decide(f, "t1", "iot:Publish", "topic/t2/x") == [Decision.IMPLICIT_DENY]
    assert decide(f, "t1", "iot:Publish", "topic/org/x") == [Decision.ALLOW]  # the CA's O is SpringCard


def _fleet(n, pol):
    return build(
        pol,
        group("g", policies=[pol.address.name]),
        *[thing(f"esp32-{i:04d}", groups=["g"], attributes={"site": "paris" if i % 2 else "lyon"}) for i in range(n)],
    )


def test_matrix_folds_things_with_the_same_permissions_up_to_their_name():
    rows = matrix(_fleet(50, SCOPED))
    assert len(rows) == 1 and rows[0].count == 50
    connect, publish, subscribe, receive = rows[0].cells
    assert connect.allow == ("${thing}",) and publish.allow == ("dt/${thing}/*",)
    assert subscribe.allow == ("dt/${thing}/*",) and receive.allow == ("dt/${thing}/*",)


def test_matrix_keeps_other_variables_symbolic_and_splits_when_they_do_not_resolve():
    pol = policy_res("by-site", allow("iot:Publish", ARN + "topic/site/${iot:Connection.Thing.Attributes[site]}/*"))
    rows = matrix(_fleet(10, pol))
    assert [(r.count, r.cells[1].allow) for r in rows] == [(10, ("site/${Thing.Attributes[site]}/*",))]
    f = build(
        pol,
        group("g", policies=["by-site"]),
        thing("a", groups=["g"], attributes={"site": "paris"}),
        thing("b", groups=["g"]),
    )  # b has no site: the resource matches nothing for it
    rows = matrix(f)
    assert sorted((r.things, r.cells[1].allow) for r in rows) == [
        (("a",), ("site/${Thing.Attributes[site]}/*",)),
        (("b",), ()),
    ]


def test_scoped_policy_is_not_cross_device():
    f = _fleet(20, SCOPED)
    assert cross_device(f, fold(all_connections(f))) == []


def test_allow_all_is_cross_device_with_a_concrete_request():
    f = _fleet(20, policy_res("demo", allow("iot:*", "*")))
    found = cross_device(f, fold(all_connections(f)))
    assert found
    sentence = found[0].sentence(f)
    assert sentence.startswith("esp32-0000") and "esp32-0001" in sentence and found[0].result.deciding


def test_wildcard_segment_is_cross_device_on_the_other_things_own_topic():
    pol = policy_res(
        "loose",
        allow("iot:Connect", ARN + f"client/{TN}"),
        allow("iot:Publish", [ARN + f"topic/dt/{TN}/*", ARN + "topic/dt/*/telemetry"]),
    )
    f = _fleet(3, pol)
    found = cross_device(f, fold(all_connections(f)))
    texts = [x.sentence(f) for x in found]
    assert any("can publish to dt/esp32-0001/telemetry, which is esp32-0001's" in t for t in texts), texts


def test_per_device_policies_with_literal_names_fold_into_one_row():
    """One policy per device naming it literally (as imported from an account) reads like a scoped one."""
    resources = []
    for i in range(30):
        name = f"dev-{i:02d}"
        resources += [
            policy_res(
                f"{name}-policy",
                allow("iot:Connect", ARN + f"client/{name}"),
                allow("iot:Publish", ARN + f"topic/dt/{name}/*"),
            ),
            thing(name, principals=[name]),
            cert(name, policies=[f"{name}-policy"]),
        ]
    f = build(*resources)
    rows = matrix(f)
    assert [(r.count, r.cells[0].allow, r.cells[1].allow) for r in rows] == [(30, ("${thing}",), ("dt/${thing}/*",))]
    assert cross_device(f, fold(all_connections(f), all_variables=True)) == []
    # a group-wide statement naming one device keeps that device apart: its own name is not another's
    shared = build(
        policy_res("p", allow("iot:Publish", ARN + "topic/dt/dev-01/*")),
        group("g", policies=["p"]),
        thing("dev-01", groups=["g"]),
        thing("dev-02", groups=["g"]),
        thing("dev-03", groups=["g"]),
    )
    assert sorted((r.things, r.cells[1].allow) for r in matrix(shared)) == [
        (("dev-01",), ("dt/${thing}/*",)),
        (("dev-02", "dev-03"), ("dt/dev-01/*",)),
    ]
    found = cross_device(shared, fold(all_connections(shared), all_variables=True))
    assert [
        x.sentence(shared) for x in found if x.request.action == "iot:Publish" and "dt/dev-01" in x.request.resource
    ] == [
        "dev-02 (and 1 other thing(s) with the same permissions) can publish to dt/dev-01/telemetry, which is dev-01's"
    ]
