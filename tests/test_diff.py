"""The leaf-level diff (engine/diff.py) as properties: for random nested JSON pairs, applying the reported changes
to the old value gives the new value (the diff is complete and exact), a value has no diff with itself, and a
permutation of a declared set (or keyed list) is no change. Plus the cases the plan relies on: keyed and typed
list elements, the kinds' declarations, the plan file's structured paths, and device registers."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import kinds as registry
from engine.diff import apply_changes, diff_fields, diff_values
from engine.kinds import ListKey
from engine.model import ActualResource, Address, DesiredResource, Elem, FieldChange
from engine.plan.model import change_from_json, change_to_json
from engine.plan.planner import PlanOptions, plan

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["a", "b", "c", "x.y", "[0]"]),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
)
keys = st.sampled_from(["a", "b", "c", "d", "Sid", "x.y", "0"])
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30,
)


@settings(max_examples=250, deadline=None)
@given(json_values, json_values)
def test_applying_the_changes_to_the_old_value_gives_the_new_value(old, new) -> None:
    changes = diff_values(old, new)
    assert _same(apply_changes(old, changes), new)
    # and the plan file's form of each change reads back to the same change
    assert [FieldChange.from_json(json.loads(json.dumps(f.to_json()))) for f in changes] == changes


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_a_value_has_no_diff_with_itself(value) -> None:
    assert diff_values(value, value) == []
    assert diff_values(value, json.loads(json.dumps(value))) == []


# documents with declared lists: `items` keyed by `id` (elements without one by content), `tags` a set, and each
# item's `members` a set; `rules` typed (single-key elements)
member = st.sampled_from(["m1", "m2", "m3", "m4"])
item = st.fixed_dictionaries(
    {"v": json_values},
    optional={"id": st.sampled_from(["i1", "i2", "i3"]), "members": st.lists(member, unique=True, max_size=4)},
)
rule = st.dictionaries(st.sampled_from(["lambda", "s3", "sqs"]), json_values, min_size=1, max_size=1)


def _first_of_each(identity):
    """Keep the first element of each identity (a document's ids and action types are unique)."""

    def keep(xs: list) -> list:
        seen: list = []
        out = []
        for x in xs:
            i = identity(x)
            if i is None or i not in seen:
                out.append(x)
                seen.append(i)
        return out

    return keep


document = st.fixed_dictionaries(
    {
        "items": st.lists(item, max_size=5).map(_first_of_each(lambda x: x.get("id"))),
        "tags": st.lists(member, unique=True, max_size=4),
        "rules": st.lists(rule, max_size=4).map(_first_of_each(lambda x: next(iter(x)))),
        "plain": json_values,
    }
)
DECLARED = (ListKey("items", "key", "id"), ListKey("items[].members"), ListKey("tags"), ListKey("rules", "type"))


def _canon(value, path: tuple = ()):
    """`value` with the declared lists in a canonical order (their order is no change by declaration)."""
    if isinstance(value, dict):
        return {k: _canon(v, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canon(v, path + ("[]",)) for v in value]
        if path in {rule.pattern for rule in DECLARED}:
            items.sort(key=lambda x: json.dumps(x, sort_keys=True))
        return items
    return value


@settings(max_examples=250, deadline=None)
@given(document, document)
def test_declared_lists_apply_exactly_up_to_their_order(old, new) -> None:
    changes = diff_values(old, new, DECLARED)
    assert _same(_canon(apply_changes(old, changes)), _canon(new))
    for f in changes:  # a declared list's elements are named by identity, never by position
        if f.segments[0] in ("items", "tags", "rules") and len(f.segments) > 1:
            assert f.segments[1].by != "index", f


document_with_duplicates = st.fixed_dictionaries(
    {
        "items": st.lists(item, max_size=5),
        "tags": st.lists(member, max_size=4),
        "rules": st.lists(rule, max_size=4),
        "plain": scalars,
    }
)


@settings(max_examples=200, deadline=None)
@given(document_with_duplicates, document_with_duplicates)
def test_duplicate_identities_are_told_apart_by_occurrence(old, new) -> None:
    changes = diff_values(old, new, DECLARED)
    assert _same(_canon(apply_changes(old, changes)), _canon(new))


@settings(max_examples=200, deadline=None)
@given(document, st.randoms(use_true_random=False))
def test_a_permutation_of_a_set_or_keyed_list_is_no_change(doc, rnd) -> None:
    shuffled = json.loads(json.dumps(doc))
    for key in ("items", "tags", "rules"):
        rnd.shuffle(shuffled[key])
    for x in shuffled["items"]:
        if "members" in x:
            rnd.shuffle(x["members"])
    assert diff_values(doc, shuffled, DECLARED) == []


def _same(a, b) -> bool:
    """Equal as JSON text (1 and true differ, and so do 1 and 1.0)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_ordered_lists_align_so_one_insert_is_one_add() -> None:
    old = [{"n": i} for i in range(40)]
    new = old[:5] + [{"n": 99}] + old[5:]
    assert [(f.op, f.path, f.after) for f in diff_values(old, new, root=("xs",))] == [("add", "xs[5]", {"n": 99})]
    changed = [dict(x) for x in old]
    changed[17]["n"] = -1
    assert [(f.op, f.path, f.before, f.after) for f in diff_values(old, changed, root=("xs",))] == [
        ("change", "xs[17].n", 17, -1)
    ]


def test_policy_statements_by_sid_else_by_content_and_actions_as_sets() -> None:
    decl = registry.by_qualified("aws.Policy")
    connect = {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}
    read = {"Sid": "Read", "Effect": "Allow", "Action": ["iot:Subscribe", "iot:Receive"], "Resource": ["t/1", "t/2"]}
    actual = {"document": {"Statement": [connect, read]}, "keepVersions": 5}
    widened = {
        "document": {
            "Statement": [
                {**read, "Action": ["iot:Receive", "iot:Subscribe", "iot:Publish"], "Resource": ["t/2", "t/1"]},
                connect,
                {"Sid": "Widen", "Effect": "Allow", "Action": "iot:*", "Resource": "*"},
            ]
        },
        "keepVersions": 5,
    }
    changes = diff_fields(widened, actual, decl)
    assert [(f.op, f.path, f.after) for f in changes] == [
        ("add", "document.Statement[Sid=Read].Action[]", "iot:Publish"),
        (
            "add",
            "document.Statement[Sid=Widen]",
            {"Sid": "Widen", "Effect": "Allow", "Action": "iot:*", "Resource": "*"},
        ),
    ]
    assert changes[1].segments == ("document", "Statement", Elem("key", "Widen", key="Sid"))
    assert _same(apply_changes(actual, changes)["document"]["Statement"][2], widened["document"]["Statement"][2])


def test_rule_actions_by_type_and_name_lists_as_sets_for_every_kind() -> None:
    rule = registry.by_qualified("aws.TopicRule")
    have = {"actions": [{"lambda": {"functionArn": "f1"}}, {"s3": {"bucketName": "b"}}]}
    want = {"actions": [{"s3": {"bucketName": "b"}}, {"lambda": {"functionArn": "f2"}}]}
    assert [(f.path, f.before, f.after) for f in diff_fields(want, have, rule)] == [
        ("actions[lambda].lambda.functionArn", "f1", "f2")
    ]
    for qualified, field in (
        ("aws.Thing", "groups"),
        ("aws.Thing", "principals"),
        ("aws.Certificate", "policies"),
        ("aws.ThingGroup", "policies"),
        ("aws.ThingType", "searchableAttributes"),
        ("azure.Enrollment", "iotHubs"),
        ("azure.EnrollmentGroup", "iotHubs"),
    ):
        decl = registry.by_qualified(qualified)
        assert diff_fields({field: ["b", "a", "c"]}, {field: ["c", "a", "b"]}, decl) == [], qualified
        assert [(f.op, f.path, f.after) for f in diff_fields({field: ["a", "b", "d"]}, {field: ["a", "b"]}, decl)] == [
            ("add", f"{field}[]", "d")
        ], qualified


def test_a_large_map_is_listed_key_by_key_not_summarised() -> None:
    decl = registry.by_qualified("azure.Device")
    have = {"desired": {f"p{i:02d}": i for i in range(30)}}
    want = {"desired": {f"p{i:02d}": i + 1 for i in range(30)}}
    changes = diff_fields(want, have, decl)
    assert len(changes) == 30 and changes[0].path == "desired.p00" and (changes[0].before, changes[0].after) == (0, 1)


def test_an_immutable_set_list_still_means_replace() -> None:
    """Immutability is per top-level field, also when the change is one member of a set."""
    address = Address.of("aws", "aws-eu", "ThingType", "tt")
    p = plan(
        [DesiredResource(address, "aws.ThingType", {"searchableAttributes": ["a", "b"]})],
        [ActualResource(address, "aws.ThingType", {"searchableAttributes": ["a"]}, token="1")],
        PlanOptions(),
    )
    assert p.changes == ()  # a replace, which the ThingType's refine refuses, naming the field
    (blocked,) = p.blocked  # a difference no plan can carry out (engine/model.py Blocked)
    assert blocked.field == "searchableAttributes" and "cannot be changed in place" in blocked.reason


def test_plan_files_keep_structured_paths_and_older_files_still_load() -> None:
    address = Address.of("aws", "aws-eu", "Thing", "t")
    p = plan(
        [DesiredResource(address, "aws.Thing", {"attributes": {"a.b": "2"}, "groups": ["g2"]})],
        [ActualResource(address, "aws.Thing", {"attributes": {"a.b": "1"}, "groups": ["g1"]}, token="1")],
        PlanOptions(),
    )
    (change,) = p.changes
    data = change_to_json(change)
    assert data["fields"] == [
        {"op": "change", "path": "attributes.a.b", "segments": ["attributes", "a.b"], "before": "1", "after": "2"},
        {"op": "remove", "path": "groups[]", "segments": ["groups", {"member": "g1"}], "before": "g1", "after": None},
        {"op": "add", "path": "groups[]", "segments": ["groups", {"member": "g2"}], "before": None, "after": "g2"},
    ]
    assert change_from_json(json.loads(json.dumps(data))) == change
    older = {
        **data,
        "fields": [
            {"path": "attributes.serial", "before": "1", "after": "2"},
            {"path": "groups", "before": None, "after": ["g"]},
        ],
    }
    fields = change_from_json(older).fields
    assert [(f.op, f.segments, f.field) for f in fields] == [
        ("change", ("attributes", "serial"), "attributes"),
        ("add", ("groups",), "groups"),
    ]


def test_device_register_values_are_diffed_to_the_leaf_where_structured() -> None:
    from engine.providers.device.kinds import diff_registers

    changes = [
        {
            "kind": "register",
            "name": "ipv4",
            "before": {"address": "10.0.0.2", "gateway": "10.0.0.1"},
            "after": {"address": "10.0.0.3", "gateway": "10.0.0.1"},
            "sensitive": False,
        },
        {"kind": "register", "name": "mqtt_broker", "before": "old", "after": "new", "sensitive": False},
        {"kind": "slot", "name": "13", "before": "(sensitive)", "after": "(sensitive)", "sensitive": True},
    ]
    address = Address.of("device", "m", "d")
    actual = ActualResource(address, "device.DeviceConfig", {}, ids={"changes": changes})
    got = diff_registers(DesiredResource(address, "device.DeviceConfig", {}), actual)
    assert [(f.path, f.before, f.after, f.sensitive) for f in got] == [
        ("registers.ipv4.address", "10.0.0.2", "10.0.0.3", False),
        ("registers.mqtt_broker", "old", "new", False),
        ("slots.13", "(sensitive)", "(sensitive)", True),
    ]


# deepdiff (a required dependency) as an independent oracle: engine/diff.py keeps its own walk (its module
# docstring says why: identity-keyed list elements by Sid/type/content, paths that name them), and must agree
# with deepdiff on *whether* and *where at the top level* two values differ, types included (1 is not True).
# deepdiff compares list elements by hash, where True == 1 == 1.0 (DeepDiff([True], [1]) is {}): scalars are
# handed to it tagged with their JSON type, so the oracle is exact.
def _typed(value):
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return f"{type(value).__name__}:{json.dumps(value)}"


@settings(max_examples=250, deadline=None)
@given(json_values, json_values)
def test_deepdiff_agrees_on_whether_values_differ(old, new) -> None:
    from deepdiff import DeepDiff

    assert bool(diff_values(old, new)) == bool(DeepDiff(_typed(old), _typed(new)))


@settings(max_examples=200, deadline=None)
@given(document, document)
def test_deepdiff_agrees_on_which_fields_differ_up_to_declared_order(old, new) -> None:
    from deepdiff import DeepDiff

    ours = {f.segments[0] for f in diff_values(old, new, DECLARED)}
    theirs = {key for key in old if DeepDiff(_typed(_canon(old[key], (key,))), _typed(_canon(new[key], (key,))))}
    assert ours == theirs
