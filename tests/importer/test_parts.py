"""The importer's parts on plain data: checkpoints, selection and renames, file layout, secrets, registry."""

from __future__ import annotations

import json

import pytest

from engine.diagnostics import FleetctlError
from engine.importer import writer
from engine.importer.checkpoint import DATA_DIR, STATE_FILE, Checkpoint
from engine.importer.model import Exported, Filter, SecretSlot, secret_slot
from engine.importer.select import closure, matches, referenced_kinds, rename
from engine.model import ActualResource, Address


# ---------------------------------------------------------------------------------------------- checkpoints
def _thing(name: str) -> ActualResource:
    return ActualResource(
        Address.of("aws", "t", "Thing", name),
        "aws.Thing",
        {"thingType": None, "attributes": {"z": "1", "a": "2"}, "groups": [], "principals": []},
        token="v1",
        ids={"version": 1},
    )


def test_checkpoint_keeps_pages_and_drops_lines_written_after_the_last_save(tmp_path):
    cp = Checkpoint.open(tmp_path, {"target": "t"}, resume=False)
    cp.page_done("aws.Thing", "tok-1", [_thing("a"), _thing("b")])
    cp.page_done("aws.Thing", "tok-2", [_thing("c")])
    with (tmp_path / DATA_DIR / "aws.Thing.jsonl").open("a") as fh:  # a crash between append and save
        fh.write(json.dumps({"address": "aws/t/Thing/half"}) + "\n")
    with pytest.raises(FleetctlError, match="holds an interrupted import"):
        Checkpoint.open(tmp_path, {"target": "t"}, resume=False)
    with pytest.raises(FleetctlError, match="must repeat"):
        Checkpoint.open(tmp_path, {"target": "other"}, resume=True)
    again = Checkpoint.open(tmp_path, {"target": "t"}, resume=True)
    token, things = again.pages_from("aws.Thing")
    assert token == "tok-2" and [t.address.name for t in things] == ["a", "b", "c"]
    assert list(things[0].state["attributes"]) == ["z", "a"]  # order kept: it is the output's
    again.page_done("aws.Thing", None, [_thing("d")])
    again.kind_done("aws.Thing", things + [_thing("d")])
    assert [t.address.name for t in again.known()["aws.Thing"]] == ["a", "b", "c", "d"]
    again.add_materials({"aws/t/Certificate/x": {"certificatePem": "PEM"}})
    assert Checkpoint.open(tmp_path, {"target": "t"}, resume=True).materials() == {
        "aws/t/Certificate/x": {"certificatePem": "PEM"}
    }
    (tmp_path / "aws-eu").mkdir()
    (tmp_path / "aws-eu" / "things.yaml").write_text("# written by the interrupted run\n")
    again.record_written(["aws-eu/things.yaml"])
    Checkpoint.forget_output(tmp_path, {"target": "other"})  # another import's: left alone
    assert (tmp_path / "aws-eu" / "things.yaml").exists()
    Checkpoint.forget_output(tmp_path, {"target": "t"})
    assert not (tmp_path / "aws-eu" / "things.yaml").exists()
    again.remove()
    assert not (tmp_path / STATE_FILE).exists() and not (tmp_path / DATA_DIR).exists()


# ---------------------------------------------------------------------------------------------- selection
def _res(kind: str, name: str, state: dict) -> ActualResource:
    return ActualResource(Address.of("aws", "t", kind, name), f"aws.{kind}", state)


def test_filters_match_any_value_of_a_fact_and_never_a_missing_key():
    facts = {"name": "ESP32-01", "group": ["paris", "lyon"], "thingType": None}
    assert matches([Filter.parse("name=ESP32-*"), Filter.parse("group=ly*")], facts)
    assert not matches([Filter.parse("group=nice")], facts)
    assert not matches([Filter.parse("thingType=*")], facts)  # no type: no match
    assert not matches([Filter.parse("attributes.site=paris")], facts)
    with pytest.raises(ValueError):
        Filter.parse("name")


def test_closure_follows_references_transitively_and_renames_rewrite_them():
    actual = {
        r.address: r
        for r in [
            _res("Thing", "t1", {"thingType": "tt", "groups": ["child"], "principals": ["c0ffee"]}),
            _res("ThingGroup", "child", {"parent": "root", "policies": []}),
            _res("ThingGroup", "root", {"parent": None, "policies": ["p"]}),
            _res("ThingType", "tt", {}),
            _res("Policy", "p", {}),
            _res("Policy", "unused", {}),
            _res("Certificate", "c0ffee", {"caCertificate": "ca1", "policies": ["p"]}),
            _res("CACertificate", "ca1", {}),
        ]
    }
    picked = closure([Address.parse("aws/t/Thing/t1")], actual)
    assert sorted(a.name for a in picked) == ["c0ffee", "ca1", "child", "p", "root", "t1", "tt"]
    assert referenced_kinds({"aws.Thing"}) >= {
        "aws.Certificate",
        "aws.CACertificate",
        "aws.Policy",
        "aws.ThingGroup",
        "aws.ThingType",
        "aws.ProvisioningTemplate",
    }
    out = {
        r.address.name: r
        for r in rename(
            list(actual.values()),
            {Address.parse("aws/t/Certificate/c0ffee"): "t1-cert", Address.parse("aws/t/CACertificate/ca1"): "acme"},
        )
    }
    assert out["t1"].state["principals"] == ["t1-cert"]
    assert out["t1-cert"].state["caCertificate"] == "acme" and "acme" in out
    assert actual[Address.parse("aws/t/Thing/t1")].state["principals"] == ["c0ffee"]  # inputs untouched


# ---------------------------------------------------------------------------------------------- layout
def _doc(kind: str, name: str, split: str | None = None, spec: dict | None = None) -> Exported:
    address = Address.of("aws", "aws-eu", kind, name)
    return Exported(address, f"aws.{kind}", spec or {}, address, split=split)


def test_large_kinds_split_per_group_small_ones_stay_whole():
    things = [
        _doc("Thing", f"t{i:04}", split="paris" if i % 2 else ("a:b" if i % 3 else None))
        for i in range(writer.SPLIT + 1)
    ]
    files = writer.layout(things + [_doc("Policy", "p")])
    assert sorted(files) == [
        "aws-eu/policies.yaml",
        "aws-eu/things/a_b.yaml",
        "aws-eu/things/paris.yaml",
        "aws-eu/things/ungrouped.yaml",
    ]
    assert sum(len(v) for k, v in files.items() if "/things/" in k) == writer.SPLIT + 1
    assert [d.address.name for d in files["aws-eu/things/paris.yaml"]][:2] == ["t0001", "t0003"]
    small = writer.layout(things[: writer.SPLIT])
    assert list(small) == ["aws-eu/things.yaml"]
    two = writer.layout([_doc("Thing", f"x{i}", split=k) for i, k in enumerate(["a:b", "a_b"] * 300)])
    assert len([f for f in two if f.startswith("aws-eu/things/a_b")]) == 2  # sanitised alike, kept apart
    assert [writer.kind_stem(k) for k in ("aws.ThingType", "aws.CACertificate", "aws.Policy", "azure.Device")] == [
        "thing-types",
        "ca-certificates",
        "policies",
        "devices",
    ]


def test_secrets_become_env_references_and_public_files_relative_paths():
    d1 = _doc(
        "Thing",
        "device-2",
        spec={
            "key": secret_slot(Address.parse("azure/hub/Device/device-2"), "primaryKey", "primary key"),
            "other": SecretSlot("FLEETCTL_DEVICE_2_PRIMARY_KEY", "another secret"),
        },
    )
    files, public, secrets = writer.render([d1], "2026-11-21T10:00:00Z")
    text = files["aws-eu/things.yaml"]
    assert "key: {env: FLEETCTL_DEVICE_2_PRIMARY_KEY}" in text
    assert [s[0] for s in secrets][0] == "FLEETCTL_DEVICE_2_PRIMARY_KEY"
    assert len({s[0] for s in secrets}) == 2  # one variable per secret
    assert (
        secret_slot(Address.parse("azure/hub/Device/device2"), "primaryKey", "").env == "FLEETCTL_DEVICE2_PRIMARY_KEY"
    )


def test_a_provider_without_an_importer_is_a_clear_error():
    from engine.importer.registry import IMPORTERS, importer_for

    assert set(IMPORTERS) == {"aws", "azure", "device"}
    assert importer_for("aws").provider == "aws" and importer_for("azure").provider == "azure"
    device = importer_for("device")  # device dumps: imported with --dumps, not through a Target
    assert device.provider == "device"
    with pytest.raises(FleetctlError, match="imported from their dumps"):
        device.read(None)
    with pytest.raises(FleetctlError, match="cannot import from 'gcp'"):
        importer_for("gcp")
