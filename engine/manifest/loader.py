"""Load a fleet folder of multi-document YAML files, keeping file:line:col for every key.

ruamel.yaml's round-trip loader records positions; we convert each document to plain dicts/lists at once
and keep a side table path → (line, col), so later stages (pydantic, references) can point at the exact
field. Duplicate keys and YAML syntax errors become diagnostics; loading carries on with the other files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
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
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
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
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def parse_text(text: str, file: str, base_dir: Path | None = None) -> tuple[list[Document], list[Diagnostic]]:
    """Parse a multi-document YAML text; a syntax or duplicate-key error ends that file with a diagnostic."""
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    base = base_dir or Path(".")
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
