"""Load a fleet folder of multi-document YAML files, keeping file:line:col for every key.

ruamel.yaml's round-trip loader records positions; we convert each document to plain dicts/lists at once
and keep a side table path → (line, col), so later stages (pydantic, references) can point at the exact
field. Duplicate keys and YAML syntax errors become diagnostics; loading carries on with the other files.

ruamel's loader is pure Python (~1.2 ms per small document, 2 min for 100,000 things written as plain YAML), so
a text is first parsed with libyaml (PyYAML's C parser) and converted here with ruamel's YAML 1.2 rules; ruamel
remains the reference: a text holding anything the fast path does not reproduce exactly (explicit tags,
directives, tabs, duplicate keys, syntax errors, ...) is parsed again by ruamel, whose result and diagnostics
are then the file's. tests/test_loader_fast.py holds both paths to identical results.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.error import MarkedYAMLError

from engine.diagnostics import Diagnostic, Source, error

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


def _plain(node: Any, path: Path_, positions: dict[Path_, tuple[int, int]]) -> Any:
    """ruamel's round-trip objects → plain data, recording each key's and item's position."""
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            key = _plain_scalar(key)  # HexInt, ScalarFloat, an anchored key's PlainScalarString: their base type
            try:
                line, col = node.lc.key(key)
                positions[path + (key,)] = (line + 1, col + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            out[key] = _plain(value, path + (key,), positions)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, value in enumerate(node):
            try:
                line, col = node.lc.item(i)
                positions[path + (i,)] = (line + 1, col + 1)
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
            out_list.append(_plain(value, path + (i,), positions))
        return out_list
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
    from yaml.nodes import MappingNode as _MappingNode, ScalarNode as _ScalarNode
except ImportError:  # PyYAML built without libyaml: the ruamel path only
    _CParser = None


class _Fallback(Exception):
    """The fast path cannot reproduce ruamel's result for this text."""


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


def _fast_value(node: Any, path: Path_, positions: dict[Path_, tuple[int, int]], depth: int = 0) -> Any:
    tag = node.tag
    if depth > _MAX_DEPTH:
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
            if key in out:
                raise _Fallback  # ruamel's duplicate-key diagnostic, word for word
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
                out[key] = _fast_value(value_node, sub, positions, depth + 1)
        if merges:  # a merged key gets no position (as with ruamel), its value's keys and items do
            for key, value_node in _merged_items(merges, out):
                out[key] = _fast_value(value_node, path + (key,), positions, depth + 1)
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
                out_list.append(_fast_value(item, sub, positions, depth + 1))
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


def _fast_parse(text: str, file: str, base: Path) -> list[Document]:
    if _CParser is None or _ruamel_only(text) or _maybe_too_deep(text):
        raise _Fallback
    docs: list[Document] = []
    try:
        composer = _Composer(text)
    except Exception as exc:
        raise _Fallback from exc
    try:
        index = 0
        while composer.check_node():
            node = composer.get_node()
            positions: dict[Path_, tuple[int, int]] = {}
            if node.tag is _MAP or node.tag is _SEQ:
                positions[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
            data = _fast_value(node, (), positions)
            if data is not None:
                docs.append(Document(file, index, data, positions, base))
            index += 1
    except _Fallback:
        raise
    except Exception as exc:  # libyaml's syntax errors, and anything else: ruamel gives the diagnostic
        raise _Fallback from exc
    finally:
        composer.dispose()
    return docs


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def parse_text(text: str, file: str, base_dir: Path | None = None, *,
               fast: bool = True) -> tuple[list[Document], list[Diagnostic]]:
    """Parse a multi-document YAML text; a syntax or duplicate-key error ends that file with a diagnostic.

    libyaml parses (fast=True) unless the text holds something only ruamel's round-trip loader reproduces
    (an explicit tag, a directive, a duplicate key, a syntax error, ...): then, or with fast=False, ruamel
    parses the whole text, and its result and diagnostics are the reference the fast path matches.
    """
    base = base_dir or Path(".")
    if fast:
        try:
            return _fast_parse(text, file, base), []
        except _Fallback:
            pass
    return _ruamel_parse(text, file, base)


def _ruamel_parse(text: str, file: str, base: Path) -> tuple[list[Document], list[Diagnostic]]:
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    try:
        for index, node in enumerate(_yaml().load_all(text)):
            if node is None:
                continue
            positions: dict[Path_, tuple[int, int]] = {}
            if hasattr(node, "lc"):
                positions[()] = (node.lc.line + 1, node.lc.col + 1)
            docs.append(Document(file, index, _plain(node, (), positions), positions, base))
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        diags.append(error("duplicate key in mapping",
                           (exc.problem or "").strip().replace("\n", " ") or "each key may appear once per mapping",
                           source=Source(file, mark.line + 1, mark.column + 1) if mark else Source(file)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        diags.append(error(f"invalid YAML: {exc.problem or exc.context}",
                           source=Source(file, mark.line + 1, mark.column + 1) if mark else Source(file)))
    return docs, diags


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


def load_path(root: Path) -> tuple[list[Document], list[Diagnostic]]:
    """Load every manifest below `root`. File names in positions are relative to `root` (or its parent)."""
    root = Path(root)
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    rel_base = root if root.is_dir() else root.parent
    for path in manifest_files(root):
        try:
            rel = str(path.relative_to(rel_base.parent if rel_base.parent != rel_base else rel_base))
        except ValueError:
            rel = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            diags.append(error(f"cannot read manifest: {exc}", source=Source(rel)))
            continue
        d, e = parse_text(text, rel, path.parent)
        docs.extend(d)
        diags.extend(e)
    return docs, diags
