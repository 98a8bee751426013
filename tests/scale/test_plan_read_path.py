"""The whole-fleet read of `plan`, shaped by the quota floor (research/quotas.md §8.1): the ListThings page chain
starts while the fleet loads, group members are listed alongside the things, the chain is listed once, and a
plan that fails to load stops the reads it started. Plus the loader's memory and collector measures."""

from __future__ import annotations

import gc
import math
import time

import pytest

from engine import run
from engine.diagnostics import FleetctlError
from engine.manifest.fleet import load_fleet
from engine.providers.aws import provider as aws_provider
from engine.providers.aws import read as aws_read
from tests.scale.conftest import THINGSET, esp32_macs


def _csv(n: int) -> list[str]:
    return ["mac,site"] + [f"{mac},site-{i % 3}" for i, mac in enumerate(esp32_macs(n))]


def _apply(root, tmp_path) -> None:
    result = run.plan(root, run.Context(journal_path=tmp_path / "journal.jsonl"))
    specs = {n: m.spec for n, m in result.fleet.targets().items()}
    assert run.apply(result.plan, run.Context(journal_path=tmp_path / "journal.jsonl"), root, specs).ok


def test_the_chain_starts_while_the_fleet_loads_and_is_listed_once(aws_env, tmp_path, write, monkeypatch):
    root = write(THINGSET, _csv(600))
    _apply(root, tmp_path)
    events: list[tuple[str, float]] = []
    real_prefetch, real_load = aws_provider.AwsProvider.prefetch, run.load

    def prefetch(self, depth=aws_provider.PREFETCH_PAGES):
        events.append(("prefetch", time.monotonic()))
        return real_prefetch(self, depth)

    def load(path, ctx, on_targets=None):
        fleet = real_load(path, ctx, on_targets)
        events.append(("loaded", time.monotonic()))
        return fleet

    monkeypatch.setattr(aws_provider.AwsProvider, "prefetch", prefetch)
    monkeypatch.setattr(run.planning, "load", load)
    ctx = run.Context(journal_path=tmp_path / "journal.jsonl")
    result = run.plan(root, ctx)
    assert [e[0] for e in events] == ["prefetch", "loaded"]  # the chain was started before the load ended
    assert result.plan.changes == ()  # ... and read the same fleet: no changes
    calls = result.stats["providers"]["aws/aws-eu"]["calls"]
    assert calls["list_things"] == math.ceil(600 / 250)  # listed once, not once early and once again


def test_group_members_read_alongside_the_things_land_on_each_thing(aws_env, tmp_path, write):
    root = write(THINGSET, _csv(300))
    _apply(root, tmp_path)
    provider = run.get_provider(
        run.Context(journal_path=tmp_path / "j.jsonl"),
        ("aws", "aws-eu"),
        {n: m.spec for n, m in load_fleet(root, {}).targets().items()},
    )
    provider.prefetch()
    actual = {r.address.name: r for r in provider.read([], prune=True).actual}
    things = [r for r in actual.values() if r.kind == "aws.Thing"]
    assert len(things) == 300
    assert all(r.state["groups"] == ["esp32-fleet"] for r in things)
    assert len(actual["esp32-fleet"].ids["members"]) == 300
    # and without the early start the reader gives the same state
    again = {r.address.name: r.state for r in provider.read([], prune=True).actual}
    assert again == {name: r.state for name, r in actual.items()}


def test_a_fleet_that_fails_to_load_stops_the_chain_it_started(aws_env, tmp_path, write, monkeypatch):
    root = write(THINGSET, _csv(10))
    (root / "broken.yaml").write_text(
        "apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {name: x, target: aws-eu}\nspec: {thingTpye: esp32}\n"
    )
    started: list[aws_read.ReadAhead] = []
    real_init = aws_read.ReadAhead.__init__

    def init(self, pages, depth=0):
        real_init(self, pages, depth)
        started.append(self)

    monkeypatch.setattr(aws_read.ReadAhead, "__init__", init)
    with pytest.raises(FleetctlError) as exc:
        run.plan(root, run.Context(journal_path=tmp_path / "journal.jsonl"))
    assert "thingTpye" in str(exc.value)
    assert len(started) == 1 and started[0]._closed.is_set()
    started[0]._thread.join(timeout=10)
    assert not started[0]._thread.is_alive()


def test_an_unbound_chain_does_not_wait_for_its_reader():
    pages = iter([([i], None) for i in range(10)])
    ahead = aws_read.ReadAhead(pages, depth=2)
    time.sleep(0.2)
    assert ahead._queue.qsize() == 2  # bounded while the fleet loads
    ahead.unbound()
    ahead._thread.join(timeout=5)
    assert not ahead._thread.is_alive() and ahead._queue.qsize() == 11  # every page and the end marker
    assert [p for p, _ in ahead] == [[i] for i in range(10)]


def test_loading_pauses_the_cyclic_collector_and_restores_it(tmp_path, write):
    root = write(THINGSET, _csv(50))
    assert gc.isenabled()
    seen: list[bool] = []
    real = gc.isenabled
    load_fleet(root, {}, on_targets=lambda specs: seen.append(real()))
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        load_fleet(root, {})
        assert not gc.isenabled()  # a caller's own pause is left alone
    finally:
        gc.enable()


def test_generated_documents_share_their_fields_sets_without_mixing_them(tmp_path, write):
    root = write(THINGSET, _csv(20))
    (root / "hand.yaml").write_text(
        "apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {name: hand-1, target: aws-eu}\n"
        "spec: {thingType: esp32}\n---\n"
        "apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {name: hand-2, target: aws-eu}\n"
        "spec: {thingType: esp32, principals: []}\n"
    )
    fleet = load_fleet(root, {})
    assert not fleet.diagnostics.has_errors
    things = [m for m in fleet.manifests if m.decl.qualified == "aws.Thing"]
    generated = [m for m in things if m.name.startswith("esp32-")]
    assert len({id(m.spec.__pydantic_fields_set__) for m in generated}) == 1
    assert len({id(m.envelope.metadata.__pydantic_fields_set__) for m in generated}) == 1
    desired = {d.address.name: d.spec for d in fleet.desired if d.kind == "aws.Thing"}
    assert "principals" not in desired["hand-1"] and desired["hand-2"]["principals"] == []  # each its own fields
    assert "principals" not in desired[generated[0].name]
