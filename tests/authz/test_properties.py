"""Property tests (hypothesis): adding an Allow never removes a permission, adding a Deny never adds one, and
the order of statements and policies never matters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.authz.evaluate import Decision, Request, evaluate
from engine.authz.policy import parse_policy
from engine.authz.variables import CertFacts, Session, ThingFacts
from tests.authz.helpers import ARN

ACTIONS = ["iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive", "iot:*", "*", "iot:P*", "iot:?eceive"]
TN = "${iot:Connection.Thing.ThingName}"
RESOURCES = [
    "*",
    ARN + "topic/*",
    ARN + f"topic/dt/{TN}/*",
    ARN + "topic/dt/*/telemetry",
    ARN + "topicfilter/dt/#",
    ARN + f"client/{TN}",
    ARN + "client/${iot:ClientId}",
    ARN + "topic/${iot:Connection.Thing.Attributes[site]}/*",
    ARN + "topic/room?",
    ARN + "topicfilter/*",
    ARN + "thing/" + TN,
    ARN + "topic/${iot:Nothing}",
]
CONDITIONS = [
    None,
    {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
    {"StringEquals": {"iot:Connection.Thing.Attributes[site]": "paris"}},
    {"StringNotEquals": {"iot:ClientId": "thing2"}},
    {"StringLikeIfExists": {"iot:Connection.Thing.ThingTypeName": "l*"}},
    {"ForAnyValue:StringEquals": {"iot:Certificate.Subject.OrganizationalUnit": "SmartHome"}},
]
REQUESTS = [
    Request(a, ARN + r)
    for a, r in [
        ("iot:Connect", "client/thing1"),
        ("iot:Connect", "client/thing2"),
        ("iot:Publish", "topic/dt/thing1/telemetry"),
        ("iot:Publish", "topic/dt/thing2/telemetry"),
        ("iot:Subscribe", "topicfilter/dt/#"),
        ("iot:Receive", "topic/room1"),
        ("iot:Publish", "topic/paris/x"),
        ("iot:UpdateThingShadow", "thing/thing1"),
    ]
]
SESSIONS = [
    Session(
        "thing1",
        ThingFacts("thing1", "lightbulb", {"site": "paris"}),
        CertFacts("id", {"OrganizationalUnit": ("SmartHome", "LightBulb")}),
    ),
    Session("thing2", None, None),
    Session("thing1", ThingFacts("thing1"), None),
]


@st.composite
def statements(draw, effect=None):
    out = {"Effect": effect or draw(st.sampled_from(["Allow", "Deny"]))}
    key = draw(st.sampled_from(["Action", "NotAction"]))
    out[key] = draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3))
    rkey = draw(st.sampled_from(["Resource", "Resource", "NotResource"]))
    out[rkey] = draw(st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=3))
    cond = draw(st.sampled_from(CONDITIONS))
    if cond:
        out["Condition"] = cond
    return out


policies = st.lists(st.lists(statements(), min_size=1, max_size=4), min_size=1, max_size=3)


def _policies(docs):
    return [parse_policy(f"p{i}", {"Statement": s}) for i, s in enumerate(docs)]


@settings(max_examples=300, deadline=None)
@given(policies, statements(effect="Allow"), st.sampled_from(REQUESTS), st.sampled_from(SESSIONS))
def test_adding_an_allow_never_removes_a_permission(docs, extra, request_, session):
    before = evaluate(_policies(docs), request_, session)
    after = evaluate(_policies(docs[:-1] + [docs[-1] + [extra]]), request_, session)
    if before.decision is Decision.ALLOW:
        assert after.decision is Decision.ALLOW
    if before.decision is Decision.EXPLICIT_DENY:
        assert after.decision is Decision.EXPLICIT_DENY


@settings(max_examples=300, deadline=None)
@given(policies, statements(effect="Deny"), st.sampled_from(REQUESTS), st.sampled_from(SESSIONS))
def test_adding_a_deny_never_adds_a_permission(docs, extra, request_, session):
    before = evaluate(_policies(docs), request_, session)
    after = evaluate(_policies(docs + [[extra]]), request_, session)
    if before.decision is not Decision.ALLOW:
        assert after.decision is not Decision.ALLOW


@settings(max_examples=300, deadline=None)
@given(policies, st.randoms(use_true_random=False), st.sampled_from(REQUESTS), st.sampled_from(SESSIONS))
def test_order_of_statements_and_policies_never_matters(docs, rnd, request_, session):
    before = evaluate(_policies(docs), request_, session)
    shuffled = [list(s) for s in docs]
    for s in shuffled:
        rnd.shuffle(s)
    named = list(enumerate(shuffled))
    rnd.shuffle(named)
    after = evaluate([parse_policy(f"p{i}", {"Statement": s}) for i, s in named], request_, session)
    assert after.decision is before.decision
    assert {(s.policy, s.effect) for s in after.deciding} == {(s.policy, s.effect) for s in before.deciding}
