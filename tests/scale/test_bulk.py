"""The Azure bulk-registry grouping strategy and its pricing."""

from __future__ import annotations

import pytest

from engine.bulk import BULK_LIMIT, batches, choose, device_mode
from engine.model import Action, Address, Change


def device(i: int, action: Action, etag: str | None = None) -> Change:
    return Change(
        Address.of("azure", "hub", "Device", f"d{i:04d}"), "azure.Device", action, ids={"etag": etag} if etag else {}
    )


def test_creates_and_deletes_group_by_mode_in_chunks_of_100_in_plan_order():
    wave = (
        [device(i, Action.CREATE) for i in range(250)]
        + [device(300 + i, Action.DELETE, "e") for i in range(3)]
        + [device(400, Action.UPDATE), device(401, Action.DELETE)]
    )
    bulk, single = batches(wave)
    assert [(b.mode, len(b.changes)) for b in bulk] == [
        ("create", 100),
        ("create", 100),
        ("create", 50),
        ("deleteIfMatchETag", 3),
    ]
    assert [c.address.name for c in bulk[0].changes][:3] == ["d0000", "d0001", "d0002"]
    assert [c.address.name for c in bulk[2].changes][-1] == "d0249"
    # a twin update stays individual; one lone unconditional delete gains nothing from a bulk call
    assert [c.address.name for c in single] == ["d0400", "d0401"]


def test_other_kinds_and_custom_modes():
    other = Change(Address.of("azure", "hub", "Enrollment", "e"), "azure.Enrollment", Action.CREATE)
    assert device_mode(other) is None
    bulk, single = batches([device(1, Action.UPDATE), device(2, Action.UPDATE)], lambda c: "updateIfMatchETag", limit=1)
    assert [len(b.changes) for b in bulk] == [1, 1] and single == []
    with pytest.raises(ValueError):
        batches([], limit=0)


def test_choose_prices_each_path_at_the_hub_tier():
    ten_k = choose(10_000, tier="S1", units=1)
    assert ten_k.path == "bulk"
    assert ten_k.seconds["individual"] == pytest.approx(6000.0)  # 100 registry ops / min
    assert ten_k.seconds["bulk-if-one-op-per-call"] == pytest.approx(60.0)  # 100 calls
    assert ten_k.seconds["import-job"] == pytest.approx(60 + 36.0)
    assert choose(10_000, import_jobs=True).path == "bulk"  # 96 s job vs 60 s of bulk calls
    assert choose(1_000_000, tier="S1", import_jobs=True).path == "import-job"
    assert choose(1).path == "individual" and BULK_LIMIT == 100
