"""Evaluator vectors written from the AWS IoT Core developer guide's examples and rules. Each vector's id says
which construct it covers and the guide's reasoning for the expected decision."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.authz.evaluate import Decision, Request, evaluate
from engine.authz.policy import matches, parse_policy
from engine.authz.variables import CertFacts, Session, ThingFacts, substitute
from tests.authz.helpers import ARN, allow, deny, policy

A, D, IMPLICIT = Decision.ALLOW, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY
T1 = ThingFacts("thing1", "lightbulb", {"site": "paris", "floor": "2"})
CERT = CertFacts(
    "abc123",
    {
        "CommonName": ("thing1",),
        "Organization": ("IoT Devices",),
        "OrganizationalUnit": ("LightBulb", "SmartHome"),
        "Country": ("US",),
    },
    {"CommonName": ("IoT Devices Primary CA",), "Organization": ("IoT Devices",)},
    "921285cbb7a5e086",
    dt.datetime(2024, 3, 26, tzinfo=dt.UTC),
    dt.datetime(2025, 4, 28, tzinfo=dt.UTC),
    {"DNSName": ("example.com",)},
)
S = Session("thing1", T1, CERT)  # client id = thing name, certificate attached to thing1
NO_THING = Session("thing1", None, CERT)  # the certificate is attached to no thing
NO_CERT = Session("thing1", T1, None)


def pub(topic: str) -> Request:
    return Request("iot:Publish", ARN + "topic/" + topic)


def sub(topic_filter: str) -> Request:
    return Request("iot:Subscribe", ARN + "topicfilter/" + topic_filter)


def rcv(topic: str) -> Request:
    return Request("iot:Receive", ARN + "topic/" + topic)


def conn(client: str) -> Request:
    return Request("iot:Connect", ARN + "client/" + client)


TN = "${iot:Connection.Thing.ThingName}"
V = [
    # --- Action / NotAction (IAM "Action", "NotAction"; action names case-insensitive) -----------------------
    ("action-exact", [allow("iot:Publish", ARN + "topic/a")], pub("a"), S, A),
    (
        "action-case-insensitive: IAM action names are not case sensitive",
        [allow("IOT:publish", ARN + "topic/a")],
        pub("a"),
        S,
        A,
    ),
    ("action-not-listed: implicit deny", [allow("iot:Subscribe", ARN + "topic/a")], pub("a"), S, IMPLICIT),
    ("action-iot-star: iot:* covers every IoT action", [allow("iot:*", "*")], pub("a"), S, A),
    ("action-star: * covers every action", [allow("*", "*")], conn("x"), S, A),
    ("action-prefix-wildcard: iot:Pub* covers iot:Publish", [allow("iot:Pub*", "*")], pub("a"), S, A),
    ("action-question-mark: ? is one character", [allow("iot:?ublish", "*")], pub("a"), S, A),
    ("action-question-mark-too-short: ? needs exactly one", [allow("iot:?Publish", "*")], pub("a"), S, IMPLICIT),
    ("action-list: any listed action", [allow(["iot:Subscribe", "iot:Publish"], "*")], pub("a"), S, A),
    (
        "notaction-allow: Allow with NotAction grants every other action",
        [{"Effect": "Allow", "NotAction": "iot:Connect", "Resource": "*"}],
        pub("a"),
        S,
        A,
    ),
    (
        "notaction-excluded: the listed action is not granted",
        [{"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"}],
        pub("a"),
        S,
        IMPLICIT,
    ),
    (
        "notaction-deny: Deny NotAction iot:Connect denies Publish",
        [allow("iot:*", "*"), {"Effect": "Deny", "NotAction": "iot:Connect", "Resource": "*"}],
        pub("a"),
        S,
        D,
    ),
    # --- Resource / NotResource, wildcards ("AWS IoT Core policy variables": * and ?; + and # literal) ------
    ("resource-exact", [allow("iot:Publish", ARN + "topic/a/b")], pub("a/b"), S, A),
    ("resource-other-topic", [allow("iot:Publish", ARN + "topic/a/b")], pub("a/c"), S, IMPLICIT),
    (
        "resource-star-crosses-levels: * matches any combination of characters, / included",
        [allow("iot:Publish", ARN + "topic/a/*")],
        pub("a/b/c/d"),
        S,
        A,
    ),
    ("resource-star-not-prefix", [allow("iot:Publish", ARN + "topic/a/*")], pub("b/a/c"), S, IMPLICIT),
    ("resource-question-mark: ? one character", [allow("iot:Publish", ARN + "topic/room?")], pub("room1"), S, A),
    ("resource-question-mark-two-chars", [allow("iot:Publish", ARN + "topic/room?")], pub("room12"), S, IMPLICIT),
    (
        "resource-hash-literal: # has no wildcard meaning in a policy",
        [allow("iot:Publish", ARN + "topic/a/#")],
        pub("a/b"),
        S,
        IMPLICIT,
    ),
    (
        "resource-plus-literal: + has no wildcard meaning",
        [allow("iot:Subscribe", ARN + "topicfilter/a/+/c")],
        sub("a/b/c"),
        S,
        IMPLICIT,
    ),
    (
        "resource-hash-literal-subscribe: the filter a/# itself is allowed, literally",
        [allow("iot:Subscribe", ARN + "topicfilter/a/#")],
        sub("a/#"),
        S,
        A,
    ),
    (
        "resource-escape-star: $(*) is a literal *",
        [allow("iot:Publish", ARN + "topic/a/$(*)")],
        pub("a/b"),
        S,
        IMPLICIT,
    ),
    ("resource-escape-star-literal", [allow("iot:Publish", ARN + "topic/a/$(*)")], pub("a/*"), S, A),
    (
        "resource-iam-escape: ${*} is a literal * (IAM special characters)",
        [allow("iot:Publish", ARN + "topic/a/${*}")],
        pub("a/b"),
        S,
        IMPLICIT,
    ),
    ("resource-iam-escape-literal", [allow("iot:Publish", ARN + "topic/a/${*}")], pub("a/*"), S, A),
    (
        "resource-case-sensitive: ARNs match case-sensitively",
        [allow("iot:Publish", ARN + "topic/A")],
        pub("a"),
        S,
        IMPLICIT,
    ),
    ("resource-list: any listed resource", [allow("iot:Publish", [ARN + "topic/x", ARN + "topic/a"])], pub("a"), S, A),
    ("resource-star-all", [allow("iot:Publish", "*")], pub("anything/at/all"), S, A),
    (
        "resource-other-region: an ARN of another region grants nothing here",
        [allow("iot:Publish", "arn:aws:iot:us-west-2:123456789012:topic/a")],
        pub("a"),
        S,
        IMPLICIT,
    ),
    (
        "notresource-allow: everything except the listed",
        [{"Effect": "Allow", "Action": "iot:Publish", "NotResource": ARN + "topic/secret"}],
        pub("a"),
        S,
        A,
    ),
    (
        "notresource-excluded",
        [{"Effect": "Allow", "Action": "iot:Publish", "NotResource": ARN + "topic/secret"}],
        pub("secret"),
        S,
        IMPLICIT,
    ),
    (
        "notresource-deny: Deny everything but own topics",
        [allow("iot:Publish", "*"), {"Effect": "Deny", "Action": "iot:Publish", "NotResource": ARN + f"topic/{TN}/*"}],
        pub("thing2/x"),
        S,
        D,
    ),
    (
        "notresource-deny-own-topic-still-allowed",
        [allow("iot:Publish", "*"), {"Effect": "Deny", "Action": "iot:Publish", "NotResource": ARN + f"topic/{TN}/*"}],
        pub("thing1/x"),
        S,
        A,
    ),
    # --- MQTT resource types ("AWS IoT Core action resources") -------------------------------------------
    (
        "subscribe-needs-topicfilter: a topic/ ARN does not cover Subscribe",
        [allow("iot:Subscribe", ARN + "topic/a")],
        sub("a"),
        S,
        IMPLICIT,
    ),
    ("receive-needs-topic", [allow("iot:Receive", ARN + "topicfilter/a")], rcv("a"), S, IMPLICIT),
    ("connect-client", [allow("iot:Connect", ARN + "client/thing1")], conn("thing1"), S, A),
    (
        "shadow-thing-resource",
        [allow("iot:UpdateThingShadow", ARN + "thing/thing1")],
        Request("iot:UpdateThingShadow", ARN + "thing/thing1"),
        S,
        A,
    ),
    # --- policy variables ("Thing policy variables", "AWS IoT Core policy variables") ---------------------
    (
        "var-clientid: ${iot:ClientId} is the MQTT client id",
        [allow("iot:Connect", ARN + "client/${iot:ClientId}")],
        conn("thing1"),
        S,
        A,
    ),
    ("var-thingname", [allow("iot:Publish", ARN + f"topic/dt/{TN}/*")], pub("dt/thing1/telemetry"), S, A),
    (
        "var-thingname-other-device: scoped per thing",
        [allow("iot:Publish", ARN + f"topic/dt/{TN}/*")],
        pub("dt/thing2/telemetry"),
        S,
        IMPLICIT,
    ),
    (
        "var-thing-not-attached: thing variables do not resolve without an attached thing (access denied)",
        [allow("iot:Publish", ARN + f"topic/dt/{TN}/*")],
        pub("dt/thing1/telemetry"),
        NO_THING,
        IMPLICIT,
    ),
    (
        "var-thingtype",
        [allow("iot:Publish", ARN + "topic/${iot:Connection.Thing.ThingTypeName}/x")],
        pub("lightbulb/x"),
        S,
        A,
    ),
    (
        "var-attribute: Attributes[site]",
        [allow("iot:Publish", ARN + "topic/${iot:Connection.Thing.Attributes[site]}/*")],
        pub("paris/x"),
        S,
        A,
    ),
    (
        "var-attribute-missing: an attribute the thing lacks does not resolve",
        [allow("iot:Publish", ARN + "topic/${iot:Connection.Thing.Attributes[room]}/*")],
        pub("paris/x"),
        S,
        IMPLICIT,
    ),
    (
        "var-cert-cn: iot:Certificate.Subject.CommonName",
        [allow("iot:Publish", ARN + "topic/${iot:Certificate.Subject.CommonName}/x")],
        pub("thing1/x"),
        S,
        A,
    ),
    (
        "var-cert-issuer-o",
        [allow("iot:Publish", ARN + "topic/${iot:Certificate.Issuer.Organization}/x")],
        pub("IoT Devices/x"),
        S,
        A,
    ),
    (
        "var-cert-multivalued-in-resource: an array attribute has no single value",
        [allow("iot:Publish", ARN + "topic/${iot:Certificate.Subject.OrganizationalUnit}/x")],
        pub("LightBulb/x"),
        S,
        IMPLICIT,
    ),
    (
        "var-cert-missing-attribute: not evaluated",
        [allow("iot:Publish", ARN + "topic/${iot:Certificate.Subject.Title}")],
        pub("x"),
        S,
        IMPLICIT,
    ),
    (
        "var-cert-undeclared: no certificate PEM, certificate variables unresolved",
        [allow("iot:Publish", ARN + "topic/${iot:Certificate.Subject.CommonName}/x")],
        pub("thing1/x"),
        NO_CERT,
        IMPLICIT,
    ),
    (
        "var-unresolved-entry-others-still-match: only the entry with the variable fails",
        [allow("iot:Publish", [ARN + "topic/${iot:Connection.Thing.Attributes[room]}", ARN + "topic/common"])],
        pub("common"),
        S,
        A,
    ),
    (
        "var-unknown-variable: not resolvable",
        [allow("iot:Publish", ARN + "topic/${iot:Nothing}")],
        pub(""),
        S,
        IMPLICIT,
    ),
    # --- conditions (IAM condition operators, AWS IoT keys) ----------------------------------------------
    (
        "cond-isattached-true: Thing policy examples, Bool IsAttached",
        [allow("iot:Connect", "*", Condition={"Bool": {"iot:Connection.Thing.IsAttached": ["true"]}})],
        conn("thing1"),
        S,
        A,
    ),
    (
        "cond-isattached-false-when-not-attached",
        [allow("iot:Connect", "*", Condition={"Bool": {"iot:Connection.Thing.IsAttached": ["true"]}})],
        conn("thing1"),
        NO_THING,
        IMPLICIT,
    ),
    (
        "cond-stringequals-attribute-and-type: both keys must hold (AND)",
        [
            allow(
                "iot:Publish",
                ARN + "topic/device/stats",
                Condition={
                    "StringEquals": {
                        "iot:Connection.Thing.Attributes[site]": "paris",
                        "iot:Connection.Thing.ThingTypeName": "lightbulb",
                    }
                },
            )
        ],
        pub("device/stats"),
        S,
        A,
    ),
    (
        "cond-stringequals-one-key-fails",
        [
            allow(
                "iot:Publish",
                ARN + "topic/device/stats",
                Condition={
                    "StringEquals": {
                        "iot:Connection.Thing.Attributes[site]": "lyon",
                        "iot:Connection.Thing.ThingTypeName": "lightbulb",
                    }
                },
            )
        ],
        pub("device/stats"),
        S,
        IMPLICIT,
    ),
    (
        "cond-values-or: one of a key's values suffices",
        [
            allow(
                "iot:Publish",
                "*",
                Condition={"StringEquals": {"iot:Connection.Thing.Attributes[site]": ["lyon", "paris"]}},
            )
        ],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-stringnotequals",
        [allow("iot:Publish", "*", Condition={"StringNotEquals": {"iot:Connection.Thing.Attributes[site]": "lyon"}})],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-stringnotequals-missing-key-true: negated operators hold on an absent key",
        [allow("iot:Publish", "*", Condition={"StringNotEquals": {"iot:Connection.Thing.Attributes[room]": "x"}})],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-stringequals-missing-key-false",
        [allow("iot:Publish", "*", Condition={"StringEquals": {"iot:Connection.Thing.Attributes[room]": "x"}})],
        pub("x"),
        S,
        IMPLICIT,
    ),
    (
        "cond-ifexists-missing-key: IfExists holds when the key is absent",
        [allow("iot:Publish", "*", Condition={"StringEqualsIfExists": {"iot:Connection.Thing.Attributes[room]": "x"}})],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-ifexists-present-key-fails",
        [allow("iot:Publish", "*", Condition={"StringEqualsIfExists": {"iot:Connection.Thing.Attributes[site]": "x"}})],
        pub("x"),
        S,
        IMPLICIT,
    ),
    (
        "cond-stringlike",
        [allow("iot:Connect", "*", Condition={"StringLike": {"iot:ClientId": "thing*"}})],
        conn("thing1"),
        S,
        A,
    ),
    (
        "cond-stringnotlike",
        [allow("iot:Connect", "*", Condition={"StringNotLike": {"iot:ClientId": "thing*"}})],
        conn("thing1"),
        S,
        IMPLICIT,
    ),
    (
        "cond-ignorecase",
        [
            allow(
                "iot:Publish",
                "*",
                Condition={"StringEqualsIgnoreCase": {"iot:Connection.Thing.Attributes[site]": "PARIS"}},
            )
        ],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-null-true: Null true holds when the key is absent",
        [allow("iot:Publish", "*", Condition={"Null": {"iot:Connection.Thing.Attributes[room]": "true"}})],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-null-false: Null false requires the key",
        [allow("iot:Publish", "*", Condition={"Null": {"iot:Connection.Thing.Attributes[room]": "false"}})],
        pub("x"),
        S,
        IMPLICIT,
    ),
    (
        "cond-arnlike: ArnLike on a string key",
        [allow("iot:Publish", "*", Condition={"ArnLike": {"iot:ClientId": "thing?"}})],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-arnequals",
        [allow("iot:Publish", "*", Condition={"ArnEquals": {"iot:ClientId": "thing2"}})],
        pub("x"),
        S,
        IMPLICIT,
    ),
    (
        "cond-variable-in-value: condition values take policy variables",
        [allow("iot:Connect", "*", Condition={"StringEquals": {"iot:ClientId": TN}})],
        conn("thing1"),
        S,
        A,
    ),
    (
        "cond-variable-in-value-client-differs",
        [allow("iot:Connect", "*", Condition={"StringEquals": {"iot:ClientId": TN}})],
        conn("other"),
        Session("other", T1, CERT),
        IMPLICIT,
    ),
    (
        "cond-foranyvalue: one OU of the array suffices",
        [
            allow(
                "iot:Publish",
                "*",
                Condition={"ForAnyValue:StringEquals": {"iot:Certificate.Subject.OrganizationalUnit": "SmartHome"}},
            )
        ],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-forallvalues-fails: every OU must be listed",
        [
            allow(
                "iot:Publish",
                "*",
                Condition={"ForAllValues:StringEquals": {"iot:Certificate.Subject.OrganizationalUnit": "SmartHome"}},
            )
        ],
        pub("x"),
        S,
        IMPLICIT,
    ),
    (
        "cond-forallvalues-holds",
        [
            allow(
                "iot:Publish",
                "*",
                Condition={
                    "ForAllValues:StringLike": {"iot:Certificate.Subject.OrganizationalUnit": ["Light*", "Smart*"]}
                },
            )
        ],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-forallvalues-absent-key-holds",
        [allow("iot:Publish", "*", Condition={"ForAllValues:StringEquals": {"iot:Certificate.Subject.Title": "x"}})],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-foranyvalue-absent-key-fails",
        [allow("iot:Publish", "*", Condition={"ForAnyValue:StringEquals": {"iot:Certificate.Subject.Title": "x"}})],
        pub("x"),
        S,
        IMPLICIT,
    ),
    (
        "cond-date-notafter: certificate validity",
        [
            allow(
                "iot:Connect",
                "*",
                Condition={"DateGreaterThan": {"iot:Certificate.Validity.NotAfter": "2025-01-01T00:00:00Z"}},
            )
        ],
        conn("thing1"),
        S,
        A,
    ),
    (
        "cond-numeric",
        [allow("iot:Publish", "*", Condition={"NumericLessThan": {"iot:Connection.Thing.Attributes[floor]": "3"}})],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-unsupported-operator: the statement does not apply",
        [allow("iot:Publish", "*", Condition={"StringFuzzy": {"iot:ClientId": "thing1"}})],
        pub("x"),
        S,
        IMPLICIT,
    ),
    (
        "cond-negated-values-and: StringNotEquals must differ from every listed value (IAM: logical AND)",
        [
            allow(
                "iot:Publish",
                "*",
                Condition={"StringNotEquals": {"iot:Connection.Thing.Attributes[site]": ["lyon", "paris"]}},
            )
        ],
        pub("x"),
        S,
        IMPLICIT,
    ),
    (
        "cond-notipaddress-absent-key: a negated operator holds on an absent key",
        [allow("iot:Publish", "*", Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})],
        pub("x"),
        S,
        A,
    ),
    (
        "cond-unknown-key: aws:SourceIp cannot be known offline, taken as absent",
        [allow("iot:Publish", "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})],
        pub("x"),
        S,
        IMPLICIT,
    ),
    # --- explicit deny precedence ("AWS IoT Core policies", IAM evaluation logic) ----------------------
    ("deny-overrides-allow", [allow("iot:*", "*"), deny("iot:Publish", ARN + "topic/secret")], pub("secret"), S, D),
    (
        "deny-elsewhere-allow-stands",
        [allow("iot:*", "*"), deny("iot:Publish", ARN + "topic/secret")],
        pub("open"),
        S,
        A,
    ),
    ("deny-alone-is-deny", [deny("iot:Publish", "*")], pub("x"), S, D),
    (
        "deny-with-condition-not-holding: allow stands",
        [
            allow("iot:Publish", "*"),
            deny("iot:Publish", "*", Condition={"StringEquals": {"iot:Connection.Thing.Attributes[site]": "lyon"}}),
        ],
        pub("x"),
        S,
        A,
    ),
    (
        "deny-unresolvable-variable-does-not-apply",
        [allow("iot:Publish", "*"), deny("iot:Publish", ARN + "topic/${iot:Connection.Thing.Attributes[room]}")],
        pub("x"),
        S,
        A,
    ),
    (
        "deny-hash-does-not-cover-subtopics: a Deny on a/# is literal, a/b stays allowed (misconfiguration)",
        [allow("iot:Subscribe", ARN + "topicfilter/building/*"), deny("iot:Subscribe", ARN + "topicfilter/building/#")],
        sub("building/control_room"),
        S,
        A,
    ),
]


@pytest.mark.parametrize("statements,request_,session,expected", [v[1:] for v in V], ids=[v[0] for v in V])
def test_vector(statements, request_, session, expected):
    result = evaluate([policy("p", *statements)], request_, session)
    assert result.decision is expected, result
    if expected is Decision.EXPLICIT_DENY:
        assert result.deciding and all(s.effect == "Deny" for s in result.deciding)
    elif expected is Decision.ALLOW:
        assert result.deciding and all(s.effect == "Allow" for s in result.deciding)
    else:
        assert result.deciding == ()


def test_there_are_at_least_sixty_vectors():
    assert len(V) >= 60


def test_deciding_statements_are_named_by_sid_or_index_and_order_free():
    p1 = parse_policy("cert-policy", {"Statement": [allow("iot:*", "*"), {**deny("iot:Publish", "*"), "Sid": "NoPub"}]})
    p2 = parse_policy("group-policy", {"Statement": {**deny("iot:Publish", ARN + "topic/x")}})
    r = evaluate([p1, p2], pub("x"), S)
    assert r.decision is D
    assert [s.label for s in r.deciding] == [
        "policy 'cert-policy' statement NoPub",
        "policy 'group-policy' statement 0",
    ]
    assert evaluate([p2, p1], pub("x"), S).deciding == r.deciding


def test_group_deny_neutralises_certificate_allow():
    """Issue 14: a Deny in a group policy neutralises an Allow on a certificate."""
    cert_policy = policy("cert", allow("iot:Publish", ARN + f"topic/dt/{TN}/*"))
    group_policy = policy("group", deny("iot:Publish", ARN + "topic/dt/*/debug"))
    assert evaluate([cert_policy], pub("dt/thing1/debug"), S).decision is A
    r = evaluate([cert_policy, group_policy], pub("dt/thing1/debug"), S)
    assert r.decision is D and r.deciding[0].policy == "group"


def test_scoped_thing_name_vs_client_id_suffix():
    """Issue 14: topic/${ThingName}/* is scoped; topic/*/${iot:ClientId} is not (any prefix, and the client id
    is the device's choice unless Connect pins it)."""
    scoped = policy("scoped", allow("iot:Publish", ARN + f"topic/{TN}/*"))
    loose = policy("loose", allow("iot:Publish", ARN + "topic/*/${iot:ClientId}"))
    other = pub("thing2/thing1")
    assert evaluate([scoped], other, S).decision is IMPLICIT
    assert evaluate([loose], other, S).decision is A


def test_assumed_keys_are_reported():
    r = evaluate(
        [policy("p", allow("iot:Publish", "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))], pub("x"), S
    )
    assert r.assumed == ("aws:SourceIp",)


def test_refused_connection_is_implicit_deny():
    r = evaluate([policy("p", allow("*", "*"))], pub("x"), S, refused="certificate c is INACTIVE")
    assert r.decision is IMPLICIT and "INACTIVE" in r.reason


def test_substitution_is_literal_and_matching_rules():
    s = Session("a*b", None, None)
    text = substitute(ARN + "client/${iot:ClientId}", s)
    assert text is not None and matches(text, ARN + "client/a*b") and not matches(text, ARN + "client/aXb")
    assert substitute("${iot:Connection.Thing.ThingName}", s) is None


def test_parse_problems_and_json_documents():
    p = parse_policy(
        "j",
        '{"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}, '
        '{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}',
    )
    assert len(p.statements) == 1 and "Effect must be Allow or Deny" in p.problems[0]
    assert parse_policy("bad", "{not json").problems
