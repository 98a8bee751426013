"""engine/sandbox/moto_index.py: the keyed lookups answer exactly what moto's scans answer, and the link index
stays true to the links whatever sequence of changes they go through."""

from __future__ import annotations

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sandbox.moto_index import LinkIndex

KEYS = st.tuples(st.sampled_from(["arn:c1", "arn:c2", "arn:c3"]), st.sampled_from(["t1", "t2", "t3"]))
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS),
        st.tuples(st.just("del"), KEYS),
        st.tuples(st.just("pop"), KEYS),
        st.tuples(st.just("popitem"), KEYS),
        st.tuples(st.just("clear"), KEYS),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_the_link_index_follows_every_change(ops):
    links, plain = LinkIndex(), {}
    for op, key in ops:
        if op == "set":
            links[key] = plain[key] = object()
        elif op == "del" and key in plain:
            del links[key], plain[key]
        elif op == "pop":
            assert (links.pop(key, None) is None) == (plain.pop(key, None) is None)
        elif op == "popitem" and plain:
            k, _ = links.popitem()
            del plain[k]
        elif op == "clear":
            links.clear(), plain.clear()
    assert dict(links).keys() == plain.keys()
    for thing in ("t1", "t2", "t3"):
        assert links.principals_of(thing) == [k[0] for k in links if k[1] == thing]  # moto's scan, in its order
    for cert in ("arn:c1", "arn:c2", "arn:c3"):
        assert links.things_of(cert) == [k[1] for k in links if k[0] == cert]


def test_lookups_through_boto3_match_moto_and_keep_its_errors(aws_env):
    iot = boto3.client("iot", region_name="eu-west-2")
    iot.create_thing(thingName="a")
    iot.create_thing(thingName="b")
    cert = iot.create_keys_and_certificate(setAsActive=True)
    other = iot.create_keys_and_certificate(setAsActive=False)
    iot.attach_thing_principal(thingName="a", principal=cert["certificateArn"])
    iot.attach_thing_principal(thingName="b", principal=cert["certificateArn"])
    iot.attach_thing_principal(thingName="a", principal=other["certificateArn"])
    assert sorted(iot.list_thing_principals(thingName="a")["principals"]) == sorted(
        [cert["certificateArn"], other["certificateArn"]]
    )
    assert sorted(iot.list_principal_things(principal=cert["certificateArn"])["things"]) == ["a", "b"]
    iot.detach_thing_principal(thingName="a", principal=cert["certificateArn"])
    assert iot.list_thing_principals(thingName="a")["principals"] == [other["certificateArn"]]
    assert iot.list_principal_things(principal=cert["certificateArn"])["things"] == ["b"]
    assert iot.describe_thing(thingName="b")["thingName"] == "b"
    assert (
        iot.describe_certificate(certificateId=other["certificateId"])["certificateDescription"]["status"] == "INACTIVE"
    )
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName="missing")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_principals(thingName="missing")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_certificate(certificateId="0" * 64)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_thing_principal(
            thingName="a", principal=cert["certificateArn"].replace(cert["certificateId"], "f" * 64)
        )
    with pytest.raises(Exception, match="ThingStillAttached|attached"):
        iot.delete_thing(thingName="b")


class NoScan(dict):
    """A registry dict that refuses to be walked: a lookup through it must be keyed."""

    def values(self):
        raise AssertionError("scanned")

    def items(self):
        raise AssertionError("scanned")


def test_lookups_are_keyed_not_scans():
    """describe_thing, describe_certificate, _get_principal and the link lists never walk the registry (moto's
    own methods do, once per call: O(n²) to seed or read 100,000 linked things)."""
    from moto.iot.models import IoTBackend

    from engine.sandbox import moto_index

    moto_index.install()
    b = IoTBackend("eu-west-2", "999999999999")
    thing = b.create_thing("t1", None, {})
    cert = b.create_keys_and_certificate(True)[0]
    b.attach_thing_principal("t1", cert.arn)
    b.things, b.certificates = NoScan(b.things), NoScan(b.certificates)
    assert b.describe_thing("t1") is thing
    assert b.describe_certificate(cert.certificate_id) is cert and b._get_principal(cert.arn) is cert
    assert b.list_thing_principals("t1") == [cert.arn] and b.list_principal_things(cert.arn) == ["t1"]
