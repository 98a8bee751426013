"""The reference path of the manifest loader: ruamel.yaml's round-trip loader, with a composer that measures what
aliases add and how deep they nest as it composes (stopping at the alias, node or document that crosses a limit of
engine/manifest/limits.py), a constructor that keeps where a duplicate key was first written, and every failure
turned into a located diagnostic."""

from __future__ import annotations

import warnings
from collections.abc import Set as AbstractSet
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

from engine.diagnostics import Diagnostic, Source, error
from engine.manifest.document import (
    Document,
    Path_,
    duplicate_key,
    field_name,
    node_path,
    plain_scalar,
    short_tag,
    source_at,
    too_many_documents,
    unacceptable_character,
)
from engine.manifest.limits import DEFAULT as DEFAULT_LIMITS
from engine.manifest.limits import Limits
from engine.manifest.yaml_fast import Tally

# Explicit tags whose values are plain data; any other tag (`!custom`, `!!python/object:...`, `!!binary`, `!!set`)
# is an error at its field: a manifest is plain YAML, and a tag must not be dropped silently.
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}


def _tag_of(node: Any) -> str | None:
    tag = getattr(node, "tag", None)
    value = getattr(tag, "value", tag)
    return value if isinstance(value, str) else None


def _plain(
    node: Any, path: Path_, positions: dict[Path_, tuple[int, int]], problems: list[tuple[Path_, str]] | None = None
) -> Any:
    """ruamel's round-trip objects → plain data, recording each key's and item's position; an unsupported tag is
    added to `problems` (and its value kept untagged)."""
    if problems is not None and isinstance(node, (CommentedMap, CommentedSeq, TaggedScalar)):
        tag = _tag_of(node)
        if tag is not None and tag not in _PLAIN_TAGS:
            problems.append((path, tag))
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            key = plain_scalar(key)  # HexInt, ScalarFloat, an anchored key's PlainScalarString: their base type
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
    if problems is not None and isinstance(node, (bytes, AbstractSet)):  # !!binary, !!set
        problems.append((path, "tag:yaml.org,2002:" + ("binary" if isinstance(node, bytes) else "set")))
        return None
    return plain_scalar(node)


class _LimitError(MarkedYAMLError):
    """A limit of engine/manifest/limits.py crossed while composing (problem: the summary, note: the detail)."""


class _DuplicateKey(DuplicateKeyError):
    """ruamel's duplicate key, with where the key was first written (0-based line, column) and the mapping."""

    def __init__(self, key: Any, first: tuple[int, int] | None, mapping: Any, key_node: Any) -> None:
        super().__init__(
            "while constructing a mapping", mapping.start_mark, f"found duplicate key {key!r}", key_node.start_mark
        )
        self.key, self.first, self.mapping = key, first, mapping


class _MeasuringComposer(Composer):
    """ruamel's composer, measuring what the composed graph stands for as it is built: the nodes each alias adds
    to the file when expanded and the depth it reaches (an alias is one shared node here; `_plain` would copy it),
    and refusing an alias inside its own anchored node. Stops at the alias that crosses a limit."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.limits = DEFAULT_LIMITS
        self.alias_nodes = 0  # per file, over all its documents
        self.sizes: dict[int, tuple[int, int]] = {}  # closed collection node → (expanded size, height)
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
                "max_alias_nodes", f"with this alias, the nodes the aliases of this file add ({self.alias_nodes:,})"
            )
            raise _LimitError(None, None, summary, mark, detail)
        if self.depth + height > limits.max_depth:
            summary, detail = limits.exceeded(
                "max_depth", f"expanded, this alias nests the document {self.depth + height} levels deep, which"
            )
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
            raise ConstructorError(
                None, None, f"cannot read this value ({type(exc).__name__}: {exc})", node.start_mark
            ) from None


def _yaml(limits: Limits) -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    y.Composer = _MeasuringComposer
    y.Reader = Reader
    y.Constructor = _Constructor
    y.max_depth = limits.max_depth
    y.composer.limits = limits
    return y


def ruamel_parse(
    text: str, file: str, base: Path, limits: Limits, tally: Tally | None = None, line_offset: int = 0
) -> tuple[list[Document], list[Diagnostic]]:
    """ruamel reads `text`, which starts at line `line_offset` + 1 of the file (a document of a larger text)."""
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    tally = tally or Tally()
    y = _yaml(limits)
    y.reader.line = line_offset  # every mark ruamel makes counts lines from here
    composer = y.composer
    composer.alias_nodes = tally.alias_nodes
    try:
        with warnings.catch_warnings():  # a reused anchor is valid YAML (the later one wins): no warning text
            warnings.simplefilter("ignore", ReusedAnchorWarning)
            _ruamel_documents(y, text, file, base, limits, docs, diags, tally)
    except _DuplicateKey as exc:
        diags.append(
            duplicate_key(
                exc.key,
                exc.first,
                exc.problem_mark,
                exc.mapping,
                composer.root,
                file,
                node_path(composer.root, exc.mapping),
            )
        )
    except _LimitError as exc:
        diags.append(error(exc.problem, exc.note or "", source=source_at(file, exc.problem_mark)))
    except MaxDepthExceededError as exc:
        summary, detail = limits.exceeded("max_depth", f"a node nested {limits.max_depth + 1} levels deep")
        diags.append(error(summary, detail, source=source_at(file, exc.problem_mark)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = ""
        if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
            context = f"{exc.context} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        elif exc.context and exc.problem:
            context = exc.context
        diags.append(error(f"invalid YAML: {exc.problem or exc.context}", context, source=source_at(file, mark)))
    except ReaderError as exc:
        diags.append(unacceptable_character(exc, text, file, line_offset))
    except RecursionError:
        diags.append(
            error(
                "the document nests too deeply for the YAML parser",
                "lower the nesting (FLEETCTL_MAX_DEPTH bounds it; above ~200 levels the parser's own "
                "recursion ends first)",
                source=Source(file, line_offset + 1, 1),
            )
        )
    return docs, diags


def _ruamel_documents(
    y: YAML,
    text: str,
    file: str,
    base: Path,
    limits: Limits,
    docs: list[Document],
    diags: list[Diagnostic],
    tally: Tally,
) -> None:
    composer = y.composer
    for index, node in enumerate(y.load_all(text), start=tally.documents):
        tally.documents, tally.alias_nodes = index + 1, composer.alias_nodes
        if index >= limits.max_documents_per_file:
            diags.append(too_many_documents(file, composer.root.start_mark, limits))
            break
        if node is None:
            continue
        positions: dict[Path_, tuple[int, int]] = {}
        lc = getattr(node, "lc", None)
        if lc is not None and lc.line is not None:
            positions[()] = (lc.line + 1, lc.col + 1)
        else:  # a scalar document (`just text`, `42`, `!tag x`): where its node starts
            mark = composer.root.start_mark
            positions[()] = (mark.line + 1, mark.column + 1)
        problems: list[tuple[Path_, str]] = []
        doc = Document(file, index, _plain(node, (), positions, problems), positions, base)
        docs.append(doc)
        for path, tag in problems:
            diags.append(
                error(
                    f"unsupported YAML tag '{short_tag(tag)}'",
                    "manifests are plain YAML: no tags other than !!str, !!int, !!float, !!bool, "
                    "!!null, !!map, !!seq and !!timestamp",
                    source=doc.source(path),
                    field=field_name(path) or None,
                )
            )
    tally.alias_nodes = composer.alias_nodes
