"""A loaded YAML document (plain data and where each key was written) and the located diagnostics both parse
paths share (engine/manifest/yaml_fast.py, yaml_ruamel.py): duplicate keys with both places and the field path,
characters YAML does not allow, too many documents. Never a value in a diagnostic: values may be secrets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from engine.diagnostics import Diagnostic, Source, error
from engine.manifest.limits import Limits
from engine.manifest.yaml_scalars import PLAIN

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


def plain_scalar(node: Any) -> Any:
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


def source_at(file: str, mark: Any) -> Source:
    return Source(file, mark.line + 1, mark.column + 1) if mark is not None else Source(file)


def too_many_documents(file: str, mark: Any, limits: Limits) -> Diagnostic:
    summary, detail = limits.exceeded(
        "max_documents_per_file", f"document {limits.max_documents_per_file + 1:,} of this file"
    )
    return error(summary, detail, source=Source(file, mark.line + 1, mark.column + 1))


def short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def field_name(path: Path_) -> str:
    return ".".join(str(p) for p in path)


def _is_scalar(node: Any) -> bool:
    return isinstance(node.value, str)


def _is_mapping(node: Any) -> bool:  # ruamel's MappingNode or PyYAML's (both parsers' composed nodes)
    return type(node).__name__ == "MappingNode"


def node_path(root: Any, target: Any, skip_merges: set[int] | None = None) -> Path_ | None:
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
            stack.extend(
                (value_node, path + (key_node.value if _is_scalar(key_node) else "?",))
                for key_node, value_node in reversed(node.value)
                if not (skip and _is_scalar(key_node) and key_node.value == "<<" and key_node.tag is PLAIN)
            )
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
        name = next((v.value for k, v in meta.value if _is_scalar(k) and k.value == "name" and _is_scalar(v)), None)
    if kind is None or not _is_scalar(kind):
        return ""
    return f"the {kind.value}" + (f" '{name}'" if name else "")


def duplicate_key(
    key: Any, first: tuple[int, int] | None, second: Any, mapping: Any, root: Any, file: str, where: Path_ | None
) -> Diagnostic:
    """Both places a key is written (0-based `first`, the `second` key's mark), and its field path `where` in the
    composed document `root` (ruamel's or libyaml's nodes); never the values (they may be secrets)."""
    key = plain_scalar(key)
    key = key if isinstance(key, (str, int, bool)) or key is None else str(key)
    at = f"line {first[0] + 1}, column {first[1] + 1}" if first else "earlier in the mapping"
    label = _document_label(root)
    detail = (
        f"key {_quoted(key)} is written at {at} and again at line {second.line + 1}, column "
        f"{second.column + 1}{' (in ' + label + ')' if label else ''}; each key may appear once per mapping"
    )
    field = field_name(where + (key,)) if where is not None else None
    return error("duplicate key in mapping", detail, source=source_at(file, second), field=field)


def _quoted(key: Any) -> str:
    return f'"{key}"' if isinstance(key, str) else repr(key)


_C0_NAMES = (
    "NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US"
).split()


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of character `offset` of `text`."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def unacceptable_character(exc: ReaderError, text: str, file: str, line_offset: int = 0) -> Diagnostic:
    code = exc.character if isinstance(exc.character, int) else 0
    name = _C0_NAMES[code] if code < 32 else "DEL" if code == 127 else ""
    what = f"U+{code:04X}" + (f" ({name})" if name else "")
    line, col = line_col(text, exc.position) if isinstance(exc.position, int) else (1, 1)
    return error(
        f"character {what} is not allowed in YAML text",
        f'remove it, or write it as an escape inside a double-quoted string ("\\x{code:02X}")'
        if code < 256
        else "remove it, or write it as an escape inside a double-quoted string",
        source=Source(file, line + line_offset, col),
    )
