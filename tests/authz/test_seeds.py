"""The seeds' policies evaluated for concrete requests: the u-blox application note's demo allow-all policy and
its production example (seed 002 §2.1), the SpringPark how-to's demo access (seed 000), and the per-thing scoped
policy of the scale tests / docs/performance.md, proven not cross-device over a generated fleet."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.authz import AuthzFleet, Decision, check
from engine.authz.crossdevice import cross_device
from engine.authz.principals import all_connections, fold
from engine.manifest.fleet import load_fleet
from tests.authz.helpers import allow, cert, policy_res, thing
from tests.conftest import FLEET
from tests.scale.conftest import THINGSET, esp32_macs, write_fleet

SEEDS = Path("/work/shared/seeds")
TN = "${iot:Connection.Thing.ThingName}"
US_WEST = "arn:aws:iot:us-west-2:123456789012:"
EU_WEST = "arn:aws:iot:eu-west-2:123456789012:"


def production(arn: str) -> list[dict]:
    """Seed 002, §2.1 step 3: "use a policy which explicitly specifies the allowed actions per resources"."""
    return [
        allow("iot:Connect", arn + f"client/{TN}"),
        allow("iot:Subscribe", [arn + f"topicfilter/$aws/things/{TN}/shadow/*", arn + f"topicfilter/{TN}/*"]),
        allow("iot:Receive", [arn + f"topic/$aws/things/{TN}/shadow/*", arn + f"topic/{TN}/*"]),
        allow("iot:Publish", [arn + f"topic/$aws/things/{TN}/shadow/*", arn + f"topic/{TN}/*"]),
    ]


def two_devices(region: str, statements) -> AuthzFleet:
    target = {"t": {"region": region, "accountId": "123456789012"}}
    return AuthzFleet.build(
        [
            policy_res("p", *statements, target="t"),
            thing("device1", principals=["c1"], target="t"),
            cert("c1", policies=["p"], target="t"),
            thing("device2", principals=["c2"], target="t"),
            cert("c2", policies=["p"], target="t"),
        ],
        targets=target,
    )


def decide(fleet, name, action, resource, client_id=None):
    [answer] = check(fleet, name, "t", action, resource, client_id)
    return answer.result.decision


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the field documents are not in this checkout")
def test_the_seed_still_says_what_the_tests_transcribe():
    note = (SEEDS / "002_b5cf703f8c0571dc.txt").read_text()
    assert "publish to all topics and subscribe to all topic filters" in note
    assert "topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*" in note
    howto = (SEEDS / "000_782bb712ebd38229.txt").read_text()
    assert "springcard/springcore/+/rdr/evt" in howto


def test_ublox_demo_allow_all_lets_anything_through():
    f = two_devices("us-west-2", [allow("iot:*", "*")])
    assert decide(f, "device1", "iot:Publish", US_WEST + "topic/$aws/things/device2/shadow/update") is Decision.ALLOW
    assert decide(f, "device1", "iot:Subscribe", US_WEST + "topicfilter/#") is Decision.ALLOW
    assert decide(f, "device1", "iot:Connect", US_WEST + "client/device2", "device2") is Decision.ALLOW
    found = cross_device(f, fold(all_connections(f)))
    assert any(x.request.action == "iot:Connect" and x.client_id == "device2" for x in found)


def test_ublox_production_example_is_scoped_per_thing():
    f = two_devices("us-west-2", production(US_WEST))
    assert decide(f, "device1", "iot:Connect", US_WEST + "client/device1") is Decision.ALLOW
    assert decide(f, "device1", "iot:Publish", US_WEST + "topic/$aws/things/device1/shadow/update") is Decision.ALLOW
    assert (
        decide(f, "device1", "iot:Publish", US_WEST + "topic/$aws/things/device2/shadow/update")
        is Decision.IMPLICIT_DENY
    )
    assert decide(f, "device1", "iot:Subscribe", US_WEST + "topicfilter/device1/cmd") is Decision.ALLOW
    assert cross_device(f, fold(all_connections(f))) == []


def test_ublox_production_example_copied_to_another_region_grants_nothing():
    """Copied as written (us-west-2) into an eu-west-2 account: no statement matches the devices' ARNs."""
    f = two_devices("eu-west-2", production(US_WEST))
    assert decide(f, "device1", "iot:Connect", EU_WEST + "client/device1") is Decision.IMPLICIT_DENY


def test_springpark_demo_access_subscribes_only_with_the_literal_filter():
    """'The demo access only allows you to subscribe to topic springcard/springcore/+/rdr/evt': in a policy the
    + is literal, so exactly that filter is allowed, and through it every reader's events are received."""
    f = two_devices(
        "eu-west-2",
        [
            allow("iot:Connect", EU_WEST + f"client/{TN}"),
            allow("iot:Subscribe", EU_WEST + "topicfilter/springcard/springcore/+/rdr/evt"),
            allow("iot:Receive", EU_WEST + "topic/springcard/springcore/*/rdr/evt"),
        ],
    )
    assert (
        decide(f, "device1", "iot:Subscribe", EU_WEST + "topicfilter/springcard/springcore/+/rdr/evt") is Decision.ALLOW
    )
    assert (
        decide(f, "device1", "iot:Subscribe", EU_WEST + "topicfilter/springcard/springcore/device2/rdr/evt")
        is Decision.IMPLICIT_DENY
    )
    assert (
        decide(f, "device1", "iot:Receive", EU_WEST + "topic/springcard/springcore/device2/rdr/evt") is Decision.ALLOW
    )


def test_example_fleet_reader_policy_is_not_cross_device():
    fleet = AuthzFleet.from_fleet(load_fleet(FLEET, resolve_secrets=False))
    assert cross_device(fleet, fold(all_connections(fleet))) == []


def test_scale_fleet_scoped_policy_is_not_cross_device(tmp_path):
    """The scale tests' group policy (client/${iot:Connection.Thing.ThingName}) over 2,000 generated things."""
    root = write_fleet(tmp_path / "fleet", THINGSET, ["mac,site"] + [f"{m},paris" for m in esp32_macs(2000)])
    loaded = load_fleet(root, resolve_secrets=False)
    assert not loaded.diagnostics.errors
    fleet = AuthzFleet.from_fleet(loaded)
    folds = fold(all_connections(fleet))
    assert len(folds) == 1 and len(folds[0].members) == 2000
    assert cross_device(fleet, folds) == []
    [answer] = check(
        fleet,
        "esp32-240AC4000001",
        "aws-eu",
        "iot:Connect",
        fleet.arn("aws-eu", "client", "esp32-240AC4000000"),
        "esp32-240AC4000000",
    )
    assert answer.result.decision is Decision.IMPLICIT_DENY
