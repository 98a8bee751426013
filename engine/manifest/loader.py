"""Load a fleet folder of multi-document YAML files, keeping file:line:col for every key.

ruamel.yaml's round-trip loader records positions; we convert each document to plain dicts/lists at once
and keep a side table path → (line, col), so later stages (pydantic, references) can point at the exact
field. Duplicate keys and YAML syntax errors become diagnostics; loading carries on with the other files.

ruamel's loader is pure Python (~1.2 ms per small document, 2 min for 100,000 things written as plain YAML), so
a text is first parsed with libyaml (PyYAML's C parser) and converted here with ruamel's YAML 1.2 rules; ruamel
remains the reference: a text holding anything the fast path does not reproduce exactly (explicit tags,
directives, tabs, syntax errors, ...) is parsed again by ruamel, whose result and diagnostics are then the
file's (a large text document by document: only the documents that need it). tests/test_loader_fast.py holds
both paths to identical results. Duplicate keys and nesting past the depth limit are reported by the fast path
itself, in ruamel's words and order: they are what hostile input is made of, and ruamel's scanner takes seconds
on a large document (quadratic in open brackets).

Both paths enforce the input limits of engine/manifest/limits.py (file size, nesting depth, nodes added by
aliases, documents per file and in all) on the composed node graph, before anything is expanded: libyaml's graph
is measured (an alias is one shared node there) and a text over a limit goes to ruamel, whose composer counts as
it composes and stops at the alias, the node or the document that crosses the limit, with its line and column.
Every problem of a text becomes a located diagnostic: bytes that are not UTF-8 and characters YAML does not
allow (NUL, other control characters) by line:column, syntax errors with ruamel's problem and context, duplicate
keys with both lines and the field path (never the values), unsupported tags, values ruamel cannot construct.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.composer import Composer, ComposerError, MaxDepthExceededError
from ruamel.yaml.constructor import ConstructorError, DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, ScalarNode
from ruamel.yaml.reader import Reader, ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from engine.diagnostics import Diagnostic, Source, error
from engine.manifest.limits import DEFAULT as DEFAULT_LIMITS
from engine.manifest.limits import Limits

SKIP_DIRS = {".git", ".fleetctl", "node_modules", "__pycache__", "dumps", "out"}
Path_ = tuple[Any, ...]


@dataclass
class Document:
    """One YAML document: its plain data and where each key of it was written."""

    file: str
    index: int
    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    base_dir: Path = Path(".")

    def source(self, path: Path_ = ()) -> Source:
        """The position of `path`, or of its longest written prefix (a missing field points at its parent)."""
        path = tuple(path)
        while path and path not in self.positions:
            path = path[:-1]
        line, col = self.positions.get(path, (0, 0))
        return Source(self.file, line, col)


# Explicit tags whose values are plain data; any other tag (`!custom`, `!!python/object:...`, `!!binary`, `!!set`)
# is an error at its field: a manifest is plain YAML, and a tag must not be dropped silently.
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}


def _tag_of(node: Any) -> str | None:
    tag = getattr(node, "tag", None)
    value = getattr(tag, "value", tag)
    return value if isinstance(value, str) else None


def _plain(node: Any, path: Path_, positions: dict[Path_, tuple[int, int]],
           problems: list[tuple[Path_, str]] | None = None) -> Any:
    """ruamel's round-trip objects → plain data, recording each key's and item's position; an unsupported tag is
    added to `problems` (and its value kept untagged)."""
    if problems is not None and isinstance(node, (CommentedMap, CommentedSeq, TaggedScalar)):
        tag = _tag_of(node)
        if tag is not None and tag not in _PLAIN_TAGS:
            problems.append((path, tag))
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            key = _plain_scalar(key)  # HexInt, ScalarFloat, an anchored key's PlainScalarString: their base type
            try:
                line, col = node.lc.key(key)
                positions[path + (key,)] = (line + 1, col + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            out[key] = _plain(value, path + (key,), positions, problems)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, value in enumerate(node):
            try:
                line, col = node.lc.item(i)
                positions[path + (i,)] = (line + 1, col + 1)
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
            out_list.append(_plain(value, path + (i,), positions, problems))
        return out_list
    if isinstance(node, TaggedScalar):  # `!!str 12` (ruamel keeps the tag), or an unsupported tag reported above
        return str(node.value)
    if problems is not None and isinstance(node, (bytes, AbstractSet)):   # !!binary, !!set
        problems.append((path, "tag:yaml.org,2002:" + ("binary" if isinstance(node, bytes) else "set")))
        return None
    return _plain_scalar(node)


def _plain_scalar(node: Any) -> Any:
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, ScalarBoolean):  # an anchored `&x true`: an int subclass, not a bool
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


# ------------------------------------------------------------------------------------------- fast path
# libyaml (through PyYAML's C parser) scans and composes; the node graph is turned into plain data here, with
# ruamel's YAML 1.2 rules for plain scalars (the rules of its round-trip loader, which stays the reference:
# whatever this path does not reproduce exactly raises _Fallback and the file is parsed again by ruamel).
try:
    from yaml.cyaml import CParser as _CParser
    from yaml.nodes import MappingNode as _MappingNode
    from yaml.nodes import ScalarNode as _ScalarNode
except ImportError:  # PyYAML built without libyaml: the ruamel path only
    _CParser = None


class _Fallback(Exception):
    """The fast path cannot reproduce ruamel's result for this text."""


class _Duplicate(Exception):
    """A key written twice in a mapping (the first in ruamel's construction order): where, and where first."""

    def __init__(self, key: Any, first: tuple[int, int] | None, mapping: Any, key_node: Any) -> None:
        super().__init__(key)
        self.key, self.first, self.mapping, self.key_node = key, first, mapping, key_node


# Tags the composer gets from _Composer.resolve for nodes written without an explicit tag; an explicit tag
# (`!!str`, `!custom`) arrives as a str and sends the file to ruamel.
_PLAIN, _QUOTED, _MAP, _SEQ = object(), object(), object(), object()

if _CParser is not None:
    class _Composer(_CParser):  # type: ignore[misc, valid-type]
        """libyaml's parser and composer, with no resolver: nodes keep a marker of how they were written."""

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            pass

        def ascend_resolver(self) -> None:
            pass

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is _ScalarNode:
                return _PLAIN if implicit[0] else _QUOTED
            return _MAP if kind is _MappingNode else _SEQ


def _resolvers() -> dict[str, list[tuple[str, Any]]]:
    """ruamel's own YAML 1.2 implicit resolvers (first character → [(tag, regexp)]), in its order."""
    from ruamel.yaml.resolver import VersionedResolver
    table = VersionedResolver(version=(1, 2)).versioned_resolver
    return {ch: [(tag.rsplit(":", 1)[-1], re.compile(rx.pattern, rx.flags)) for tag, rx in rules]
            for ch, rules in table.items() if ch is not None}


_RESOLVERS = _resolvers()
_BOOL = {"true": True, "false": False}
_BASES = {"0b": 2, "0x": 16, "0o": 8}
_INF = float("inf")
_NAN = RoundTripConstructor.nan_value
_TIMESTAMPS = RoundTripConstructor()


class _Value:  # what ruamel's timestamp constructor reads of a node
    __slots__ = ("value", "start_mark", "anchor")

    def __init__(self, value: str) -> None:
        self.value, self.start_mark, self.anchor = value, None, None


def _resolved(value: str, rules: list[tuple[str, Any]]) -> Any:
    """A plain scalar whose first character may start a non-string (ruamel's resolver, then constructor)."""
    for tag, regexp in rules:
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
                    raise _Fallback  # `0x_`: ruamel fails reading the first digit
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
    except _Fallback:
        raise
    except Exception as exc:  # ruamel would fail here too, in its own way
        raise _Fallback from exc
    raise _Fallback  # merge `<<` or value `=` outside a key


def _scalar(node: Any) -> Any:
    tag = node.tag
    if tag is _QUOTED:
        return node.value
    if tag is not _PLAIN:
        raise _Fallback
    value = node.value
    rules = _RESOLVERS.get(value[:1])
    return value if rules is None else _resolved(value, rules)


def _key(node: Any) -> Any:
    """A mapping key as ruamel constructs it, restricted to str, int, bool and None (else _Fallback)."""
    tag = node.tag
    if tag is _QUOTED:
        return node.value
    if tag is not _PLAIN:
        raise _Fallback  # a tagged or a collection key
    value = node.value
    rules = _RESOLVERS.get(value[:1])
    if rules is None:
        return value
    if value == "=":
        return value  # ruamel's flatten_mapping turns the `=` value key into a string
    if not value:
        raise _Fallback  # an empty key (`{? : 1}`): libyaml may mark it elsewhere than ruamel
    key = _resolved(value, rules)
    if key is None or type(key) in (str, int, bool):
        return key
    raise _Fallback  # float, nan, timestamp keys


def _own_items(node: Any) -> tuple[list[tuple[Any, Any]], list[Any]]:
    """A mapping's own (key, value node) in order, and the mappings its `<<` merges."""
    items: list[tuple[Any, Any]] = []
    seen: set[Any] = set()
    merges: list[Any] | None = None
    for key_node, value_node in node.value:
        if key_node.tag is _PLAIN and key_node.value == "<<":
            if merges is not None:
                raise _Fallback  # a second `<<`: ruamel's error
            merges = _merge_sources(value_node)
            continue
        key = _key(key_node)
        if key in seen:
            raise _Fallback  # ruamel's duplicate-key diagnostic, word for word
        seen.add(key)
        items.append((key, value_node))
    return items, merges or []


def _merge_sources(node: Any) -> list[Any]:
    """The mappings a `<<: value` merges: one mapping, or a sequence of mappings (else ruamel's error)."""
    if node.tag is _MAP:
        return [node]
    if node.tag is _SEQ and all(item.tag is _MAP for item in node.value):
        return list(node.value)
    raise _Fallback


def _merged_items(merges: list[Any], present: Any) -> list[tuple[Any, Any]]:
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
    return own + _merged_items(merges, (key for key, _ in own)) if merges else own


def _fast_value(node: Any, path: Path_, positions: dict[Path_, tuple[int, int]], deepest: int,
                depth: int = 0) -> Any:
    """A node as plain data; a collection deeper than `deepest` (whose items might cross the depth limit, or
    ruamel's recursion) is left to ruamel."""
    tag = node.tag
    if depth > deepest:
        raise _Fallback
    if tag is _MAP:
        out: dict[Any, Any] = {}
        merges = None
        for key_node, value_node in node.value:
            ktag = key_node.tag
            if ktag is _PLAIN:
                key = key_node.value
                if key[:1] in _RESOLVERS:
                    if key == "<<":
                        if merges is not None:
                            raise _Fallback  # a second `<<`: ruamel's error
                        merges = _merge_sources(value_node)
                        continue
                    key = _key(key_node)
            elif ktag is _QUOTED:
                key = key_node.value
            else:
                raise _Fallback  # a tagged or a collection key
            if key in out:   # ruamel constructs the value first (a duplicate inside it is reported first)
                vtag = value_node.tag
                if vtag is _MAP or vtag is _SEQ:
                    _fast_value(value_node, path + (key,), {}, deepest, depth + 1)
                else:
                    _scalar(value_node)
                raise _Duplicate(key, positions.get(path + (key,)), node, key_node)
            sub = path + (key,)
            mark = key_node.start_mark
            positions[sub] = (mark.line + 1, mark.column + 1)
            vtag = value_node.tag
            if vtag is _PLAIN:
                value = value_node.value
                rules = _RESOLVERS.get(value[:1])
                out[key] = value if rules is None else _resolved(value, rules)
            elif vtag is _QUOTED:
                out[key] = value_node.value
            else:
                out[key] = _fast_value(value_node, sub, positions, deepest, depth + 1)
        if merges:  # a merged key gets no position (as with ruamel), its value's keys and items do
            for key, value_node in _merged_items(merges, out):
                out[key] = _fast_value(value_node, path + (key,), positions, deepest, depth + 1)
        return out
    if tag is _SEQ:
        out_list: list[Any] = []
        for i, item in enumerate(node.value):
            sub = path + (i,)
            mark = item.start_mark
            positions[sub] = (mark.line + 1, mark.column + 1)
            vtag = item.tag
            if vtag is _PLAIN:
                value = item.value
                rules = _RESOLVERS.get(value[:1])
                out_list.append(value if rules is None else _resolved(value, rules))
            elif vtag is _QUOTED:
                out_list.append(item.value)
            else:
                out_list.append(_fast_value(item, sub, positions, deepest, depth + 1))
        return out_list
    return _scalar(node)


# Texts the fast path leaves to ruamel at once, where libyaml (a YAML 1.1 parser) and ruamel's 1.2 scanner part:
# a directive (%YAML 1.1, %TAG) at a line start; a tab (ruamel rejects tabs where libyaml takes them as white
# space, `a:<TAB>b`); NEL, LS, PS (line breaks to libyaml, not to ruamel); a byte order mark past the start; a
# non-specific `!` or verbatim `!<...>` tag (libyaml resolves it like an untagged node); an anchor or alias name
# with a character past [0-9A-Za-z_-] (ruamel reads `&a:` as the anchor `a:`, libyaml as `&a` and a colon).
_DIRECTIVE = re.compile(r"(?:^|[\r\n])\ufeff?%")
_NON_SPECIFIC_TAG = re.compile(r"!(?:[\s,\[\]{}<]|$)")
_ANCHOR_NAME = re.compile(r"(?:^|(?<=[\s,\[\]{}:]))[&*][0-9A-Za-z_-]*[^0-9A-Za-z_\s,\[\]{}-]")
# A block scalar header that ruamel refuses and libyaml takes: `|#comment` (no space before the comment), or a
# first line of spaces only followed by a more indented one ("more indented follow up line than first").
_BLOCK_HEADER = re.compile(r"[|>][0-9+-]*(?:#| *(?:#[^\r\n]*)?(?:\r\n?|\n) +(?:\r\n?|\n))")
# A `...` document end right after another (blank and comment lines between): libyaml skips it, ruamel refuses.
_DOUBLE_DOCUMENT_END = re.compile(r"(?:^|[\r\n])\.\.\.(?:[ ]*(?:#[^\r\n]*)?(?:\r\n?|\n))+\.\.\.")


def _ruamel_only(text: str) -> bool:
    return ("\t" in text or "\x85" in text or "\u2028" in text or "\u2029" in text or text.find("\ufeff", 1) >= 0
            or ("%" in text and _DIRECTIVE.search(text) is not None)
            or ("!" in text and _NON_SPECIFIC_TAG.search(text) is not None)
            or (("&" in text or "*" in text) and _ANCHOR_NAME.search(text) is not None)
            or (("|" in text or ">" in text) and _BLOCK_HEADER.search(text) is not None)
            or ("..." in text and _DOUBLE_DOCUMENT_END.search(text) is not None))


# Deeper nesting goes to ruamel, whose recursion decides (about 250 levels, then RecursionError); an alias cycle
# (`&a [*a]`, which ruamel builds) reaches it too.
_MAX_DEPTH = 100

# libyaml's composer recurses in C without a limit: some 100,000 nested `[` crash the process where ruamel raises
# RecursionError. A text that might nest deeper than ~2,000 goes to ruamel before libyaml sees it. Block nesting
# needs indentation or compact `- `/`? `/`: ` indicators, so it is bounded by twice the longest run of ` -?:` at a
# line start; flow nesting by the count of `[` and `{` in a document (markers at a line start end documents).
_DEEP_BLOCK = re.compile(r"(?:^|[\r\n])[ ?:-]{400}")
_DOCUMENT_MARKER = re.compile(r"^(?:---|\.\.\.)", re.M)
_MAX_FLOW_OPENERS = 1000


def _maybe_too_deep(text: str) -> bool:
    if _DEEP_BLOCK.search(text):
        return True
    if text.count("[") + text.count("{") < _MAX_FLOW_OPENERS:
        return False
    start = 0
    for marker in _DOCUMENT_MARKER.finditer(text):
        end = marker.start()
        if text.count("[", start, end) + text.count("{", start, end) >= _MAX_FLOW_OPENERS:
            return True
        start = end
    return text.count("[", start) + text.count("{", start) >= _MAX_FLOW_OPENERS


# A text in which an alias may occur: `*` at its start or after white space or a flow indicator or `:` (an alias
# is a node, and a node starts nowhere else). Liberal on purpose (`"iot:*"` matches): a match only costs the
# measurement of the node graph below; a miss would let an alias bomb expand.
_MAY_ALIAS = re.compile(r"(?:^|[\s\[\]{},:\ufeff])\*")


def _alias_nodes(node: Any, memo: dict[int, int | None]) -> int:
    """The size of `node` with every alias expanded, counting each distinct node into `memo` (id → size) once.
    A node met again is an alias (libyaml's composer shares it); met while still open, a recursive one."""
    key = id(node)
    if key in memo:
        size = memo[key]
        if size is None:
            raise _Fallback          # an alias inside its own anchored node: ruamel's composer reports it
        return size
    value = node.value
    if isinstance(value, str):
        memo[key] = 1
        return 1
    memo[key] = None
    size = 1
    if node.tag is _MAP:
        for key_node, value_node in value:
            size += _alias_nodes(key_node, memo) + _alias_nodes(value_node, memo)
    else:
        for item in value:
            size += _alias_nodes(item, memo)
    memo[key] = size
    return size


@dataclass
class _Tally:
    """What the parts of one file parsed so far hold: documents (the next one's index) and alias-added nodes."""

    documents: int = 0
    alias_nodes: int = 0


def _fast_parse(text: str, file: str, base: Path, limits: Limits = DEFAULT_LIMITS, tally: _Tally | None = None,
                line_offset: int = 0) -> tuple[list[Document], list[Diagnostic]]:
    """libyaml's documents of `text`; diagnostics count lines from `line_offset` (positions do not: the caller
    shifts them, off the hot path)."""
    if _CParser is None or _ruamel_only(text):
        raise _Fallback
    if _maybe_too_deep(text):
        too_deep = _nesting_past(text, file, limits, line_offset)
        if too_deep is not None:       # the documents before the deep one, then its error
            diag, start = too_deep
            docs, diags = _fast_parse(text[:start], file, base, limits, tally, line_offset) if start else ([], [])
            return docs, diags or [diag]
    tally = tally or _Tally()
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    deepest = min(_MAX_DEPTH, limits.max_depth - 2)   # a collection at this depth holds items 2 levels deeper
    aliases = _MAY_ALIAS.search(text) is not None
    expanded = tally.alias_nodes
    try:
        composer = _Composer(text)
    except Exception as exc:
        raise _Fallback from exc
    try:
        index = tally.documents
        while composer.check_node():
            node = composer.get_node()
            if index >= limits.max_documents_per_file:
                diags.append(_too_many_documents(file, _Mark(node.start_mark, line_offset), limits))
                break
            if aliases:
                memo: dict[int, int | None] = {}
                expanded += _alias_nodes(node, memo) - len(memo)
                if expanded > limits.max_alias_nodes:
                    raise _Fallback      # ruamel's composer stops at the alias that crosses the limit
            positions: dict[Path_, tuple[int, int]] = {(): (node.start_mark.line + 1, node.start_mark.column + 1)}
            try:
                data = _fast_value(node, (), positions, deepest)
            except _Duplicate as dup:
                # ruamel composes the whole document before it constructs: a nesting past the limit anywhere in
                # it is ruamel's to report; otherwise the first duplicate in ruamel's order of construction is
                if _height(node, {}) > min(limits.max_depth, _MAX_DEPTH):
                    raise _Fallback from None
                if _MERGE_KEY in text:
                    begun: set[int] = set()
                    found = _first_duplicate(node, begun)
                    if found is None:
                        raise _Fallback from None
                    key, first, mapping, key_node = found
                    where = _node_path(node, mapping, skip_merges=begun)
                else:
                    key, mapping, key_node = dup.key, dup.mapping, dup.key_node
                    first = (dup.first[0] - 1, dup.first[1] - 1) if dup.first else None
                    where = _node_path(node, mapping)
                first = (first[0] + line_offset, first[1]) if first else None
                diags.append(_duplicate_key(key, first, _Mark(key_node.start_mark, line_offset), mapping, node,
                                            file, where))
                break
            if data is not None:
                docs.append(Document(file, index, data, positions, base))
            index += 1
    except _Fallback:
        raise
    except Exception as exc:  # libyaml's syntax errors, and anything else: ruamel gives the diagnostic
        raise _Fallback from exc
    finally:
        composer.dispose()
    tally.documents, tally.alias_nodes = index, expanded
    return docs, diags


class _Mark:
    """A libyaml mark moved down by `offset` lines (a document cut from a larger text)."""

    __slots__ = ("line", "column")

    def __init__(self, mark: Any, offset: int) -> None:
        self.line, self.column = mark.line + offset, mark.column


_MERGE_KEY = "<<"


def _first_duplicate(node: Any, begun: set[int]) -> tuple[Any, tuple[int, int], Any, Any] | None:
    """The first duplicate key in ruamel's order of construction, for a document with merge keys: a mapping's
    `<<` sources first, then its own keys, each value before its key is checked, an aliased node once.
    (key, first position 0-based, mapping node, duplicate key node); _Fallback where ruamel fails otherwise."""
    if id(node) in begun or isinstance(node.value, str):
        return None
    begun.add(id(node))
    if node.tag is not _MAP:
        for item in node.value:
            found = _first_duplicate(item, begun)
            if found is not None:
                return found
        return None
    merges = [value_node for key_node, value_node in node.value if key_node.tag is _PLAIN and key_node.value == "<<"]
    if len(merges) > 1:
        raise _Fallback      # ruamel's "found duplicate merge key"
    if merges:
        _merge_sources(merges[0])
        found = _first_duplicate(merges[0], begun)
        if found is not None:
            return found
    seen: dict[Any, tuple[int, int]] = {}
    for key_node, value_node in node.value:
        if key_node.tag is _PLAIN and key_node.value == "<<":
            continue
        key = _key(key_node)
        found = _first_duplicate(value_node, begun)
        if found is not None:
            return found
        if key in seen:
            return key, seen[key], node, key_node
        seen[key] = (key_node.start_mark.line, key_node.start_mark.column)
    return None


def _height(node: Any, memo: dict[int, int]) -> int:
    """The nesting depth of `node` with aliases expanded (ruamel's count: the node itself is 1)."""
    key = id(node)
    if key in memo:
        return memo[key]
    value = node.value
    if isinstance(value, str):
        return 1
    memo[key] = 1 << 30       # (a cycle went to ruamel before: the alias pre-check)
    height = 0
    if node.tag is _MAP:
        for key_node, value_node in value:
            height = max(height, _height(key_node, memo), _height(value_node, memo))
    else:
        for item in value:
            height = max(height, _height(item, memo))
    memo[key] = height + 1
    return height + 1


_FLOW_OPENER = re.compile(r"[\[{]")


def _nesting_past(text: str, file: str, limits: Limits, line_offset: int) -> tuple[Diagnostic, int] | None:
    """The node past the depth limit, found on libyaml's events before anything is composed, as ruamel's composer
    reports it (its max_depth counts every node; ruamel's scanner takes seconds on 5,000 open brackets, libyaml
    a millisecond). None when the text stays within the limit (libyaml may then compose it: its recursion is what
    crashes on 100,000 levels) or when a syntax error comes first (ruamel reports it). With the diagnostic, where
    the document holding the node starts (a character index)."""
    # libyaml's scanner looks ahead up to 1,024 characters for a simple key and refuses a flow nesting past 1,000:
    # it reads a prefix holding at most 900 openers, which reaches any node past the limit of 64 written in it
    opener = _FLOW_OPENER.search(text, 0)
    cut, count = len(text), 0
    while opener is not None:
        count += 1
        if count > 900:
            cut = opener.start()
            break
        opener = _FLOW_OPENER.search(text, opener.end())
    parser = _CParser(text[:cut])
    depth = start = 0
    try:
        while parser.check_event():
            event = parser.get_event()
            kind = type(event).__name__
            if kind == "DocumentStartEvent":
                start = event.start_mark.index
            elif kind in ("ScalarEvent", "SequenceStartEvent", "MappingStartEvent"):
                if depth + 1 > limits.max_depth:
                    summary, detail = limits.exceeded("max_depth", f"a node nested {limits.max_depth + 1} levels deep")
                    mark = _Mark(event.start_mark, line_offset)
                    return error(summary, detail, source=Source(file, mark.line + 1, mark.column + 1)), start
                if kind != "ScalarEvent":
                    depth += 1
            elif kind in ("SequenceEndEvent", "MappingEndEvent"):
                depth -= 1
    except Exception:  # noqa: BLE001 - libyaml's syntax error: ruamel's diagnostic
        return None
    finally:
        parser.dispose()
    return None


def _too_many_documents(file: str, mark: Any, limits: Limits) -> Diagnostic:
    summary, detail = limits.exceeded("max_documents_per_file",
                                      f"document {limits.max_documents_per_file + 1:,} of this file")
    return error(summary, detail, source=Source(file, mark.line + 1, mark.column + 1))


# ------------------------------------------------------------------------------------------- ruamel path
class _LimitError(MarkedYAMLError):
    """A limit of engine/manifest/limits.py crossed while composing (problem: the summary, note: the detail)."""


class _DuplicateKey(DuplicateKeyError):
    """ruamel's duplicate key, with where the key was first written (0-based line, column) and the mapping."""

    def __init__(self, key: Any, first: tuple[int, int] | None, mapping: Any, key_node: Any) -> None:
        super().__init__("while constructing a mapping", mapping.start_mark, f"found duplicate key {key!r}",
                         key_node.start_mark)
        self.key, self.first, self.mapping = key, first, mapping


class _MeasuringComposer(Composer):
    """ruamel's composer, measuring what the composed graph stands for as it is built: the nodes each alias adds
    to the file when expanded and the depth it reaches (an alias is one shared node here; `_plain` would copy it),
    and refusing an alias inside its own anchored node. Stops at the alias that crosses a limit."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.limits = DEFAULT_LIMITS
        self.alias_nodes = 0              # per file, over all its documents
        self.sizes: dict[int, tuple[int, int]] = {}    # closed collection node → (expanded size, height)
        self.root: Any = None

    def compose_document(self) -> Any:
        self.sizes = {}
        self.root = None
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:
                self._count_alias(target, event.start_mark)
            return super().compose_node(parent, index)
        node = super().compose_node(parent, index)
        if self.root is None and parent is None:
            self.root = node
        if not isinstance(node, ScalarNode):
            size, height = 1, 1
            items = (item for pair in node.value for item in pair) if isinstance(node, MappingNode) else node.value
            for item in items:
                s, h = (1, 1) if isinstance(item, ScalarNode) else self.sizes[id(item)]
                size += s
                height = max(height, h + 1)
            self.sizes[id(node)] = (size, height)
        return node

    def _count_alias(self, target: Any, mark: Any) -> None:
        if isinstance(target, ScalarNode):
            size, height = 1, 1
        elif id(target) in self.sizes:
            size, height = self.sizes[id(target)]
        else:
            raise ComposerError(None, None, "an alias inside the node it refers to (a recursive structure)", mark)
        limits = self.limits
        self.alias_nodes += size
        if self.alias_nodes > limits.max_alias_nodes:
            summary, detail = limits.exceeded(
                "max_alias_nodes", f"with this alias, the nodes the aliases of this file add ({self.alias_nodes:,})")
            raise _LimitError(None, None, summary, mark, detail)
        if self.depth + height > limits.max_depth:
            summary, detail = limits.exceeded(
                "max_depth", f"expanded, this alias nests the document {self.depth + height} levels deep, which")
            raise _LimitError(None, None, summary, mark, detail)


class _Constructor(RoundTripConstructor):
    """ruamel's round-trip constructor: a duplicate key keeps where it was first written, and a value ruamel
    cannot construct (`0x_`, a 13th month) is an error at its node instead of an exception without a place."""

    def check_mapping_key(self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any) -> bool:
        if key in mapping:
            try:
                first = tuple(mapping.lc.key(key))[:2]
            except (KeyError, TypeError, AttributeError):
                first = None
            raise _DuplicateKey(key, first, node, key_node)
        return True

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (MarkedYAMLError, RecursionError):
            raise
        except Exception as exc:  # noqa: BLE001 - ruamel's own failure on a value: located here
            raise ConstructorError(None, None, f"cannot read this value ({type(exc).__name__}: {exc})",
                                   node.start_mark) from None


def _yaml(limits: Limits) -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    y.Composer = _MeasuringComposer
    y.Reader = Reader
    y.Constructor = _Constructor
    y.max_depth = limits.max_depth
    y.composer.limits = limits
    return y


def parse_text(text: str, file: str, base_dir: Path | None = None, *, fast: bool = True,
               limits: Limits = DEFAULT_LIMITS) -> tuple[list[Document], list[Diagnostic]]:
    """Parse a multi-document YAML text; a syntax or duplicate-key error ends that file with a diagnostic.

    libyaml parses (fast=True) unless the text holds something only ruamel's round-trip loader reproduces
    (an explicit tag, a directive, a duplicate key, a syntax error, a crossed limit, ...): then, or with
    fast=False, ruamel parses the whole text, and its result and diagnostics are the reference the fast path
    matches.
    """
    base = base_dir or Path(".")
    if fast:
        try:
            return _fast_parse(text, file, base, limits)
        except _Fallback:
            pass
        if len(text) > _SPLIT_ABOVE and _DIRECTIVE.search(text) is None:
            return _by_document(text, file, base, limits)
    return _ruamel_parse(text, file, base, limits)


# ruamel reads ~30 times slower than libyaml (2 minutes for the 23 MB of a 100,000-device fleet), so a large text
# that needs it is cut into its documents first, and only those that need it go to ruamel: one tab in a file of
# 1,000 things costs one document, not the file. A `---` at a line start always begins a document (the YAML spec
# forbids it inside any scalar), so the cut changes no document; a directive (`%YAML`) would bind to the wrong one,
# so a text with directives is not cut. Small texts go to ruamel whole (tests/test_loader_fast.py's reference).
_SPLIT_ABOVE = 64 * 1024
_DOCUMENT_START = re.compile(r"^---(?=[ \t\r\n]|$)", re.M)


def _by_document(text: str, file: str, base: Path, limits: Limits) -> tuple[list[Document], list[Diagnostic]]:
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    tally = _Tally()
    starts = [0] + [m.start() for m in _DOCUMENT_START.finditer(text) if m.start()]
    line = 0
    for start, end in zip(starts, starts[1:] + [len(text)]):
        part = text[start:end]
        try:
            got, found = _fast_parse(part, file, base, limits, tally, line)
        except _Fallback:
            got, found = _ruamel_parse(part, file, base, limits, tally, line)   # ruamel counts from `line`
        else:
            if line:
                for doc in got:
                    doc.positions = {k: (ln + line, col) for k, (ln, col) in doc.positions.items()}
        docs.extend(got)
        diags.extend(found)
        if found:                       # an error ends the file, as it does when ruamel reads it whole
            break
        line += part.count("\n")
    return docs, diags


def _at(file: str, mark: Any) -> Source:
    return Source(file, mark.line + 1, mark.column + 1) if mark is not None else Source(file)


def _ruamel_parse(text: str, file: str, base: Path, limits: Limits, tally: _Tally | None = None,
                  line_offset: int = 0) -> tuple[list[Document], list[Diagnostic]]:
    """ruamel reads `text`, which starts at line `line_offset` + 1 of the file (a document of a larger text)."""
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    tally = tally or _Tally()
    y = _yaml(limits)
    y.reader.line = line_offset              # every mark ruamel makes counts lines from here
    composer = y.composer
    composer.alias_nodes = tally.alias_nodes
    try:
        with warnings.catch_warnings():      # a reused anchor is valid YAML (the later one wins): no warning text
            warnings.simplefilter("ignore", ReusedAnchorWarning)
            _ruamel_documents(y, text, file, base, limits, docs, diags, tally)
    except _DuplicateKey as exc:
        diags.append(_duplicate_key(exc.key, exc.first, exc.problem_mark, exc.mapping, composer.root, file,
                                    _node_path(composer.root, exc.mapping)))
    except _LimitError as exc:
        diags.append(error(exc.problem, exc.note or "", source=_at(file, exc.problem_mark)))
    except MaxDepthExceededError as exc:
        summary, detail = limits.exceeded("max_depth", f"a node nested {limits.max_depth + 1} levels deep")
        diags.append(error(summary, detail, source=_at(file, exc.problem_mark)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = ""
        if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
            context = f"{exc.context} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        elif exc.context and exc.problem:
            context = exc.context
        diags.append(error(f"invalid YAML: {exc.problem or exc.context}", context, source=_at(file, mark)))
    except ReaderError as exc:
        diags.append(_unacceptable_character(exc, text, file, line_offset))
    except RecursionError:
        diags.append(error("the document nests too deeply for the YAML parser",
                           "lower the nesting (FLEETCTL_MAX_DEPTH bounds it; above ~200 levels the parser's own "
                           "recursion ends first)", source=Source(file, line_offset + 1, 1)))
    return docs, diags


def _ruamel_documents(y: YAML, text: str, file: str, base: Path, limits: Limits, docs: list[Document],
                      diags: list[Diagnostic], tally: _Tally) -> None:
    composer = y.composer
    for index, node in enumerate(y.load_all(text), start=tally.documents):
        tally.documents, tally.alias_nodes = index + 1, composer.alias_nodes
        if index >= limits.max_documents_per_file:
            diags.append(_too_many_documents(file, composer.root.start_mark, limits))
            break
        if node is None:
            continue
        positions: dict[Path_, tuple[int, int]] = {}
        lc = getattr(node, "lc", None)
        if lc is not None and lc.line is not None:
            positions[()] = (lc.line + 1, lc.col + 1)
        else:          # a scalar document (`just text`, `42`, `!tag x`): where its node starts
            mark = composer.root.start_mark
            positions[()] = (mark.line + 1, mark.column + 1)
        problems: list[tuple[Path_, str]] = []
        doc = Document(file, index, _plain(node, (), positions, problems), positions, base)
        docs.append(doc)
        for path, tag in problems:
            diags.append(error(f"unsupported YAML tag '{_short_tag(tag)}'",
                               "manifests are plain YAML: no tags other than !!str, !!int, !!float, !!bool, "
                               "!!null, !!map, !!seq and !!timestamp", source=doc.source(path),
                               field=_field(path) or None))
    tally.alias_nodes = composer.alias_nodes


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _field(path: Path_) -> str:
    return ".".join(str(p) for p in path)


def _is_scalar(node: Any) -> bool:
    return isinstance(node.value, str)


def _is_mapping(node: Any) -> bool:   # ruamel's MappingNode or PyYAML's (both parsers' composed nodes)
    return type(node).__name__ == "MappingNode"


def _node_path(root: Any, target: Any, skip_merges: set[int] | None = None) -> Path_ | None:
    """The path of node `target` in the composed document `root`, where it is first written in document order
    (an anchored node's anchor; scalar keys as written). `skip_merges`: mappings whose `<<` item is not followed
    (ruamel removes it from a mapping node when it begins constructing it)."""
    stack: list[tuple[Any, Path_]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if node is None or id(node) in seen or _is_scalar(node):
            continue
        seen.add(id(node))
        if _is_mapping(node):
            skip = skip_merges is not None and id(node) in skip_merges
            stack.extend((value_node, path + (key_node.value if _is_scalar(key_node) else "?",))
                         for key_node, value_node in reversed(node.value)
                         if not (skip and _is_scalar(key_node) and key_node.value == "<<" and key_node.tag is _PLAIN))
        else:
            stack.extend((item, path + (i,)) for i, item in reversed(list(enumerate(node.value))))
    return None


def _document_label(root: Any) -> str:
    """`the Target 'aws-eu'` for a composed manifest document, or "" (the loader knows no kinds)."""
    if root is None or not _is_mapping(root):
        return ""
    top: dict[Any, Any] = {}
    for k, v in root.value:
        if _is_scalar(k):
            top.setdefault(k.value, v)
    kind = top.get("kind")
    meta = top.get("metadata")
    name = None
    if meta is not None and _is_mapping(meta):
        name = next((v.value for k, v in meta.value if _is_scalar(k) and k.value == "name" and _is_scalar(v)),
                    None)
    if kind is None or not _is_scalar(kind):
        return ""
    return f"the {kind.value}" + (f" '{name}'" if name else "")


def _duplicate_key(key: Any, first: tuple[int, int] | None, second: Any, mapping: Any, root: Any,
                   file: str, where: Path_ | None) -> Diagnostic:
    """Both places a key is written (0-based `first`, the `second` key's mark), and its field path `where` in the
    composed document `root` (ruamel's or libyaml's nodes); never the values (they may be secrets)."""
    key = _plain_scalar(key)
    key = key if isinstance(key, (str, int, bool)) or key is None else str(key)
    at = f"line {first[0] + 1}, column {first[1] + 1}" if first else "earlier in the mapping"
    label = _document_label(root)
    detail = (f"key {_quoted(key)} is written at {at} and again at line {second.line + 1}, column "
              f"{second.column + 1}{' (in ' + label + ')' if label else ''}; each key may appear once per mapping")
    field = _field(where + (key,)) if where is not None else None
    return error("duplicate key in mapping", detail, source=_at(file, second), field=field)


def _quoted(key: Any) -> str:
    return f'"{key}"' if isinstance(key, str) else repr(key)


_C0_NAMES = ("NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB "
             "ESC FS GS RS US").split()


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of character `offset` of `text`."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _unacceptable_character(exc: ReaderError, text: str, file: str, line_offset: int = 0) -> Diagnostic:
    code = exc.character if isinstance(exc.character, int) else 0
    name = _C0_NAMES[code] if code < 32 else "DEL" if code == 127 else ""
    what = f"U+{code:04X}" + (f" ({name})" if name else "")
    line, col = line_col(text, exc.position) if isinstance(exc.position, int) else (1, 1)
    return error(f"character {what} is not allowed in YAML text",
                 f"remove it, or write it as an escape inside a double-quoted string (\"\\x{code:02X}\")"
                 if code < 256 else "remove it, or write it as an escape inside a double-quoted string",
                 source=Source(file, line + line_offset, col))


def read_text(path: Path, file: str, limits: Limits = DEFAULT_LIMITS, *,
              what: str = "manifest") -> tuple[str | None, Diagnostic | None]:
    """A file's text, decoded as UTF-8 (a leading byte order mark kept), or the located reason it cannot be had:
    too large (before reading it), unreadable, or not UTF-8 (at the line and column of the first bad byte)."""
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            summary, detail = limits.exceeded("max_file_bytes", f"the {what} file's size, {size:,} bytes,")
            return None, error(summary, detail, source=Source(file, 1, 1))
        data = path.read_bytes()
    except OSError as exc:
        return None, error(f"cannot read {what} file: {exc.strerror or exc}", source=Source(file))
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, _not_utf8(data, exc, file)


def _not_utf8(data: bytes, exc: UnicodeDecodeError, file: str) -> Diagnostic:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return error("the file is UTF-16 text, not UTF-8", "save it as UTF-8 (without a byte order mark)",
                     source=Source(file, 1, 1))
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    col = len(data[line_start:exc.start].decode("utf-8", errors="replace")) + 1
    return error(f"invalid UTF-8: byte 0x{data[exc.start]:02X} ({exc.reason})",
                 "manifests are UTF-8 text; save the file as UTF-8", source=Source(file, line, col))


def manifest_files(root: Path) -> Iterator[Path]:
    """Every *.yaml / *.yml below root in a stable order (hidden folders and dumps/ are not manifests)."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith((".yaml", ".yml")) and not name.startswith("."):
                yield Path(dirpath) / name


def load_path(root: Path, limits: Limits | None = None) -> tuple[list[Document], list[Diagnostic]]:
    """Load every manifest below `root`. File names in positions are relative to `root` (or its parent).
    `limits`: those in force (default: engine/manifest/limits.py's, overridden by FLEETCTL_MAX_* variables)."""
    root = Path(root)
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    if limits is None:
        limits, bad = Limits.from_env()
        diags.extend(bad)
    rel_base = root if root.is_dir() else root.parent
    for path in manifest_files(root):
        try:
            rel = str(path.relative_to(rel_base.parent if rel_base.parent != rel_base else rel_base))
        except ValueError:
            rel = str(path)
        text, problem = read_text(path, rel, limits)
        if text is None:
            diags.append(problem)
            continue
        d, e = parse_text(text, rel, path.parent, limits=limits)
        diags.extend(e)
        if len(docs) + len(d) > limits.max_documents:
            over = d[limits.max_documents - len(docs)]
            docs.extend(d[:limits.max_documents - len(docs)])
            summary, detail = limits.exceeded("max_documents", f"document {limits.max_documents + 1:,} of the fleet")
            diags.append(error(summary, detail, source=over.source()))
            break
        docs.extend(d)
    return docs, diags
