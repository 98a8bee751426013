"""libyaml's composed nodes read with ruamel's YAML 1.2 rules: the node markers, the composer without a resolver,
plain scalars, mapping keys and `<<` merges (the part of the fast path both its value builder and its duplicate-key
search use). Whatever this cannot reproduce exactly raises Fallback, and the text goes to ruamel.

Hand-written on purpose: libyaml is a YAML 1.1 parser and ruamel (the reference, 1.2) is ~30 times slower; neither
library offers "libyaml's scanner with ruamel's 1.2 resolution", so the resolution rules are taken from ruamel's own
resolver table (`_resolvers`) and its constructor, and tests/test_loader_fast.py holds both paths to identical results.
"""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml.constructor import RoundTripConstructor

# libyaml (through PyYAML's C parser) scans and composes; the node graph is turned into plain data here, with
# ruamel's YAML 1.2 rules for plain scalars (the rules of its round-trip loader, which stays the reference:
# whatever this path does not reproduce exactly raises Fallback and the file is parsed again by ruamel).
CParser: Any  # libyaml's parser (PyYAML's C extension), or None where PyYAML was built without it
try:
    from yaml import cyaml

    CParser = cyaml.CParser  # type: ignore[attr-defined]  # not in `yaml`'s namespace, nor in cyaml's __all__
    from yaml.nodes import MappingNode as _MappingNode
    from yaml.nodes import ScalarNode as _ScalarNode
except ImportError:  # PyYAML built without libyaml: the ruamel path only
    CParser = None


class Fallback(Exception):
    """The fast path cannot reproduce ruamel's result for this text."""


# Tags the composer gets from LibyamlComposer.resolve for nodes written without an explicit tag; an explicit tag
# (`!!str`, `!custom`) arrives as a str and sends the file to ruamel.
PLAIN, QUOTED, MAP, SEQ = object(), object(), object(), object()

if CParser is not None:

    class LibyamlComposer(CParser):  # type: ignore[misc]  # libyaml's C parser has no type (types-PyYAML)
        """libyaml's parser and composer, with no resolver: nodes keep a marker of how they were written."""

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            pass

        def ascend_resolver(self) -> None:
            pass

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is _ScalarNode:
                return PLAIN if implicit[0] else QUOTED
            return MAP if kind is _MappingNode else SEQ


def _resolvers() -> dict[str, list[tuple[str, Any]]]:
    """ruamel's own YAML 1.2 implicit resolvers (first character → [(tag, regexp)]), in its order."""
    from ruamel.yaml.resolver import VersionedResolver

    table = VersionedResolver(version=(1, 2)).versioned_resolver
    return {
        ch: [(tag.rsplit(":", 1)[-1], re.compile(rx.pattern, rx.flags)) for tag, rx in rules]
        for ch, rules in table.items()
        if ch is not None
    }


RESOLVERS = _resolvers()
_BOOL = {"true": True, "false": False}
_BASES = {"0b": 2, "0x": 16, "0o": 8}
_INF = float("inf")
_NAN = RoundTripConstructor.nan_value
_TIMESTAMPS = RoundTripConstructor()


class _Value:  # what ruamel's timestamp constructor reads of a node
    __slots__ = ("value", "start_mark", "anchor")

    def __init__(self, value: str) -> None:
        self.value, self.start_mark, self.anchor = value, None, None


def resolved(value: str, rules: list[tuple[str, Any]]) -> Any:
    """A plain scalar whose first character may start a non-string (ruamel's resolver, then constructor)."""
    for tag, regexp in rules:  # noqa: B007 - the matching rule's tag is used after the loop
        if regexp.match(value):
            break
    else:
        return value
    try:
        if tag == "null":
            return None
        if tag == "bool":
            return _BOOL[value.lower()]
        if tag == "int":  # RoundTripConstructor.construct_yaml_int, YAML 1.2
            digits = value.replace("_", "")
            sign = 1
            if digits[0] in "+-":
                sign = -1 if digits[0] == "-" else 1
                digits = digits[1:]
            base = _BASES.get(digits[:2])
            if base:
                if len(digits) < 3:
                    raise Fallback  # `0x_`: ruamel fails reading the first digit
                return sign * int(digits[2:], base)
            return sign * int(digits)
        if tag == "float":  # RoundTripConstructor.construct_yaml_float
            digits = value.replace("_", "").lower()
            sign = -1 if digits[0] == "-" else 1
            if digits[0] in "+-":
                digits = digits[1:]
            if digits == ".inf":
                return sign * _INF
            if digits == ".nan":
                return _NAN
            return sign * float(digits)
        if tag == "timestamp":
            return _TIMESTAMPS.construct_yaml_timestamp(_Value(value))
    except Fallback:
        raise
    except Exception as exc:  # ruamel would fail here too, in its own way
        raise Fallback from exc
    raise Fallback  # merge `<<` or value `=` outside a key


def scalar(node: Any) -> Any:
    tag = node.tag
    if tag is QUOTED:
        return node.value
    if tag is not PLAIN:
        raise Fallback
    value = node.value
    rules = RESOLVERS.get(value[:1])
    return value if rules is None else resolved(value, rules)


def mapping_key(node: Any) -> Any:
    """A mapping key as ruamel constructs it, restricted to str, int, bool and None (else Fallback)."""
    tag = node.tag
    if tag is QUOTED:
        return node.value
    if tag is not PLAIN:
        raise Fallback  # a tagged or a collection key
    value = node.value
    rules = RESOLVERS.get(value[:1])
    if rules is None:
        return value
    if value == "=":
        return value  # ruamel's flatten_mapping turns the `=` value key into a string
    if not value:
        raise Fallback  # an empty key (`{? : 1}`): libyaml may mark it elsewhere than ruamel
    key = resolved(value, rules)
    if key is None or type(key) in (str, int, bool):
        return key
    raise Fallback  # float, nan, timestamp keys


def _own_items(node: Any) -> tuple[list[tuple[Any, Any]], list[Any]]:
    """A mapping's own (key, value node) in order, and the mappings its `<<` merges."""
    items: list[tuple[Any, Any]] = []
    seen: set[Any] = set()
    merges: list[Any] | None = None
    for key_node, value_node in node.value:
        if key_node.tag is PLAIN and key_node.value == "<<":
            if merges is not None:
                raise Fallback  # a second `<<`: ruamel's error
            merges = merge_sources(value_node)
            continue
        key = mapping_key(key_node)
        if key in seen:
            raise Fallback  # ruamel's duplicate-key diagnostic, word for word
        seen.add(key)
        items.append((key, value_node))
    return items, merges or []


def merge_sources(node: Any) -> list[Any]:
    """The mappings a `<<: value` merges: one mapping, or a sequence of mappings (else ruamel's error)."""
    if node.tag is MAP:
        return [node]
    if node.tag is SEQ and all(item.tag is MAP for item in node.value):
        return list(node.value)
    raise Fallback


def merged_items(merges: list[Any], present: Any) -> list[tuple[Any, Any]]:
    """(key, value node) that `<<` adds: ruamel's add_yaml_merge (first mapping wins, own keys win)."""
    out: list[tuple[Any, Any]] = []
    taken = set(present)
    for source in merges:
        for key, value_node in _effective_items(source):
            if key not in taken:
                taken.add(key)
                out.append((key, value_node))
    return out


def _effective_items(node: Any) -> list[tuple[Any, Any]]:
    """What iterating ruamel's CommentedMap of `node` gives: its own keys, then the merged ones."""
    own, merges = _own_items(node)
    return own + merged_items(merges, (key for key, _ in own)) if merges else own
