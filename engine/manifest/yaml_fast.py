"""The fast path of the manifest loader: libyaml (PyYAML's C parser) composes, this module turns the node graph into
plain data with positions, and decides which texts it must leave to ruamel (yaml_ruamel.py) because libyaml would read
them differently or unsafely: explicit tags, directives, tabs, nesting past the limits, alias bombs, duplicate keys
under merges. Duplicate keys and nesting past the depth limit are reported here, in ruamel's words and order (see
engine/manifest/loader.py for the whole design).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.diagnostics import Diagnostic, Source, error
from engine.manifest.document import Document, Path_, duplicate_key, node_path, too_many_documents
from engine.manifest.limits import DEFAULT as DEFAULT_LIMITS
from engine.manifest.limits import Limits
from engine.manifest.yaml_scalars import (
    MAP,
    PLAIN,
    QUOTED,
    RESOLVERS,
    SEQ,
    CParser,
    Fallback,
    LibyamlComposer,
    mapping_key,
    merge_sources,
    merged_items,
    resolved,
    scalar,
)


class _Duplicate(Exception):
    """A key written twice in a mapping (the first in ruamel's construction order): where, and where first."""

    def __init__(self, key: Any, first: tuple[int, int] | None, mapping: Any, key_node: Any) -> None:
        super().__init__(key)
        self.key, self.first, self.mapping, self.key_node = key, first, mapping, key_node


def _fast_value(node: Any, path: Path_, positions: dict[Path_, tuple[int, int]], deepest: int, depth: int = 0) -> Any:
    """A node as plain data; a collection deeper than `deepest` (whose items might cross the depth limit, or
    ruamel's recursion) is left to ruamel."""
    tag = node.tag
    if depth > deepest:
        raise Fallback
    if tag is MAP:
        out: dict[Any, Any] = {}
        merges = None
        for key_node, value_node in node.value:
            ktag = key_node.tag
            if ktag is PLAIN:
                key = key_node.value
                if key[:1] in RESOLVERS:
                    if key == "<<":
                        if merges is not None:
                            raise Fallback  # a second `<<`: ruamel's error
                        merges = merge_sources(value_node)
                        continue
                    key = mapping_key(key_node)
            elif ktag is QUOTED:
                key = key_node.value
            else:
                raise Fallback  # a tagged or a collection key
            if key in out:  # ruamel constructs the value first (a duplicate inside it is reported first)
                vtag = value_node.tag
                if vtag is MAP or vtag is SEQ:
                    _fast_value(value_node, path + (key,), {}, deepest, depth + 1)
                else:
                    scalar(value_node)
                raise _Duplicate(key, positions.get(path + (key,)), node, key_node)
            sub = path + (key,)
            mark = key_node.start_mark
            positions[sub] = (mark.line + 1, mark.column + 1)
            vtag = value_node.tag
            if vtag is PLAIN:
                value = value_node.value
                rules = RESOLVERS.get(value[:1])
                out[key] = value if rules is None else resolved(value, rules)
            elif vtag is QUOTED:
                out[key] = value_node.value
            else:
                out[key] = _fast_value(value_node, sub, positions, deepest, depth + 1)
        if merges:  # a merged key gets no position (as with ruamel), its value's keys and items do
            for key, value_node in merged_items(merges, out):
                out[key] = _fast_value(value_node, path + (key,), positions, deepest, depth + 1)
        return out
    if tag is SEQ:
        out_list: list[Any] = []
        for i, item in enumerate(node.value):
            sub = path + (i,)
            mark = item.start_mark
            positions[sub] = (mark.line + 1, mark.column + 1)
            vtag = item.tag
            if vtag is PLAIN:
                value = item.value
                rules = RESOLVERS.get(value[:1])
                out_list.append(value if rules is None else resolved(value, rules))
            elif vtag is QUOTED:
                out_list.append(item.value)
            else:
                out_list.append(_fast_value(item, sub, positions, deepest, depth + 1))
        return out_list
    return scalar(node)


# Texts the fast path leaves to ruamel at once, where libyaml (a YAML 1.1 parser) and ruamel's 1.2 scanner part:
# a directive (%YAML 1.1, %TAG) at a line start; a tab (ruamel rejects tabs where libyaml takes them as white
# space, `a:<TAB>b`); NEL, LS, PS (line breaks to libyaml, not to ruamel); a byte order mark past the start; a
# non-specific `!` or verbatim `!<...>` tag (libyaml resolves it like an untagged node); an anchor or alias name
# with a character past [0-9A-Za-z_-] (ruamel reads `&a:` as the anchor `a:`, libyaml as `&a` and a colon).
DIRECTIVE = re.compile(r"(?:^|[\r\n])\ufeff?%")
_NON_SPECIFIC_TAG = re.compile(r"!(?:[\s,\[\]{}<]|$)")
_ANCHOR_NAME = re.compile(r"(?:^|(?<=[\s,\[\]{}:]))[&*][0-9A-Za-z_-]*[^0-9A-Za-z_\s,\[\]{}-]")
# A block scalar header that ruamel refuses and libyaml takes: `|#comment` (no space before the comment), or a
# first line of spaces only followed by a more indented one ("more indented follow up line than first").
_BLOCK_HEADER = re.compile(r"[|>][0-9+-]*(?:#| *(?:#[^\r\n]*)?(?:\r\n?|\n) +(?:\r\n?|\n))")
# A `...` document end right after another (blank and comment lines between): libyaml skips it, ruamel refuses.
_DOUBLE_DOCUMENT_END = re.compile(r"(?:^|[\r\n])\.\.\.(?:[ ]*(?:#[^\r\n]*)?(?:\r\n?|\n))+\.\.\.")


def _ruamel_only(text: str) -> bool:
    return (
        "\t" in text
        or "\x85" in text
        or "\u2028" in text
        or "\u2029" in text
        or text.find("\ufeff", 1) >= 0
        or ("%" in text and DIRECTIVE.search(text) is not None)
        or ("!" in text and _NON_SPECIFIC_TAG.search(text) is not None)
        or (("&" in text or "*" in text) and _ANCHOR_NAME.search(text) is not None)
        or (("|" in text or ">" in text) and _BLOCK_HEADER.search(text) is not None)
        or ("..." in text and _DOUBLE_DOCUMENT_END.search(text) is not None)
    )


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
            raise Fallback  # an alias inside its own anchored node: ruamel's composer reports it
        return size
    value = node.value
    if isinstance(value, str):
        memo[key] = 1
        return 1
    memo[key] = None
    size = 1
    if node.tag is MAP:
        for key_node, value_node in value:
            size += _alias_nodes(key_node, memo) + _alias_nodes(value_node, memo)
    else:
        for item in value:
            size += _alias_nodes(item, memo)
    memo[key] = size
    return size


@dataclass
class Tally:
    """What the parts of one file parsed so far hold: documents (the next one's index) and alias-added nodes."""

    documents: int = 0
    alias_nodes: int = 0


def fast_parse(
    text: str, file: str, base: Path, limits: Limits = DEFAULT_LIMITS, tally: Tally | None = None, line_offset: int = 0
) -> tuple[list[Document], list[Diagnostic]]:
    """libyaml's documents of `text`; diagnostics count lines from `line_offset` (positions do not: the caller
    shifts them, off the hot path)."""
    if CParser is None or _ruamel_only(text):
        raise Fallback
    if _maybe_too_deep(text):
        too_deep = _nesting_past(text, file, limits, line_offset)
        if too_deep is not None:  # the documents before the deep one, then its error
            diag, start = too_deep
            before, problems = fast_parse(text[:start], file, base, limits, tally, line_offset) if start else ([], [])
            return before, problems or [diag]
    tally = tally or Tally()
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    deepest = min(_MAX_DEPTH, limits.max_depth - 2)  # a collection at this depth holds items 2 levels deeper
    aliases = _MAY_ALIAS.search(text) is not None
    expanded = tally.alias_nodes
    try:
        composer = LibyamlComposer(text)
    except Exception as exc:
        raise Fallback from exc
    try:
        index = tally.documents
        while composer.check_node():
            node: Any = composer.get_node()  # (a node: check_node() said one follows)
            if index >= limits.max_documents_per_file:
                diags.append(too_many_documents(file, _Mark(node.start_mark, line_offset), limits))
                break
            if aliases:
                memo: dict[int, int | None] = {}
                expanded += _alias_nodes(node, memo) - len(memo)
                if expanded > limits.max_alias_nodes:
                    raise Fallback  # ruamel's composer stops at the alias that crosses the limit
            positions: dict[Path_, tuple[int, int]] = {(): (node.start_mark.line + 1, node.start_mark.column + 1)}
            try:
                data = _fast_value(node, (), positions, deepest)
            except _Duplicate as dup:
                # ruamel composes the whole document before it constructs: a nesting past the limit anywhere in
                # it is ruamel's to report; otherwise the first duplicate in ruamel's order of construction is
                if _height(node, {}) > min(limits.max_depth, _MAX_DEPTH):
                    raise Fallback from None
                first: tuple[int, int] | None
                if _MERGE_KEY in text:
                    begun: set[int] = set()
                    found = _first_duplicate(node, begun)
                    if found is None:
                        raise Fallback from None
                    key, first, mapping, key_node = found
                    where = node_path(node, mapping, skip_merges=begun)
                else:
                    key, mapping, key_node = dup.key, dup.mapping, dup.key_node
                    first = (dup.first[0] - 1, dup.first[1] - 1) if dup.first else None
                    where = node_path(node, mapping)
                first = (first[0] + line_offset, first[1]) if first else None
                diags.append(
                    duplicate_key(key, first, _Mark(key_node.start_mark, line_offset), mapping, node, file, where)
                )
                break
            if data is not None:
                docs.append(Document(file, index, data, positions, base))
            index += 1
    except Fallback:
        raise
    except Exception as exc:  # libyaml's syntax errors, and anything else: ruamel gives the diagnostic
        raise Fallback from exc
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
    (key, first position 0-based, mapping node, duplicate key node); Fallback where ruamel fails otherwise."""
    if id(node) in begun or isinstance(node.value, str):
        return None
    begun.add(id(node))
    if node.tag is not MAP:
        for item in node.value:
            found = _first_duplicate(item, begun)
            if found is not None:
                return found
        return None
    merges = [value_node for key_node, value_node in node.value if key_node.tag is PLAIN and key_node.value == "<<"]
    if len(merges) > 1:
        raise Fallback  # ruamel's "found duplicate merge key"
    if merges:
        merge_sources(merges[0])
        found = _first_duplicate(merges[0], begun)
        if found is not None:
            return found
    seen: dict[Any, tuple[int, int]] = {}
    for key_node, value_node in node.value:
        if key_node.tag is PLAIN and key_node.value == "<<":
            continue
        key = mapping_key(key_node)
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
    memo[key] = 1 << 30  # (a cycle went to ruamel before: the alias pre-check)
    height = 0
    if node.tag is MAP:
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
    parser = CParser(text[:cut])
    depth = start = 0
    try:
        while parser.check_event():
            event: Any = parser.get_event()  # (an event: check_event() said one follows)
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
