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
from collections.abc import Iterator
from pathlib import Path

from engine.diagnostics import Diagnostic, Source, error
from engine.manifest.document import Document, Path_, line_col, unacceptable_character
from engine.manifest.limits import DEFAULT as DEFAULT_LIMITS
from engine.manifest.limits import Limits
from engine.manifest.yaml_fast import DIRECTIVE, Tally, fast_parse
from engine.manifest.yaml_ruamel import ruamel_parse
from engine.manifest.yaml_scalars import Fallback

__all__ = [
    "SKIP_DIRS",
    "Document",
    "Path_",
    "line_col",
    "load_path",
    "manifest_files",
    "parse_text",
    "read_text",
    "unacceptable_character",
]

SKIP_DIRS = {".git", ".fleetctl", "node_modules", "__pycache__", "dumps", "out"}


def parse_text(
    text: str, file: str, base_dir: Path | None = None, *, fast: bool = True, limits: Limits = DEFAULT_LIMITS
) -> tuple[list[Document], list[Diagnostic]]:
    """Parse a multi-document YAML text; a syntax or duplicate-key error ends that file with a diagnostic.

    libyaml parses (fast=True) unless the text holds something only ruamel's round-trip loader reproduces
    (an explicit tag, a directive, a duplicate key, a syntax error, a crossed limit, ...): then, or with
    fast=False, ruamel parses the whole text, and its result and diagnostics are the reference the fast path
    matches.
    """
    base = base_dir or Path(".")
    if fast:
        try:
            return fast_parse(text, file, base, limits)
        except Fallback:
            pass
        if len(text) > _SPLIT_ABOVE and DIRECTIVE.search(text) is None:
            return _by_document(text, file, base, limits)
    return ruamel_parse(text, file, base, limits)


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
    tally = Tally()
    starts = [0] + [m.start() for m in _DOCUMENT_START.finditer(text) if m.start()]
    line = 0
    for start, end in zip(starts, starts[1:] + [len(text)], strict=True):
        part = text[start:end]
        try:
            got, found = fast_parse(part, file, base, limits, tally, line)
        except Fallback:
            got, found = ruamel_parse(part, file, base, limits, tally, line)  # ruamel counts from `line`
        else:
            if line:
                for doc in got:
                    doc.positions = {k: (ln + line, col) for k, (ln, col) in doc.positions.items()}
        docs.extend(got)
        diags.extend(found)
        if found:  # an error ends the file, as it does when ruamel reads it whole
            break
        line += part.count("\n")
    return docs, diags


def read_text(
    path: Path, file: str, limits: Limits = DEFAULT_LIMITS, *, what: str = "manifest"
) -> tuple[str | None, Diagnostic | None]:
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
        return error(
            "the file is UTF-16 text, not UTF-8",
            "save it as UTF-8 (without a byte order mark)",
            source=Source(file, 1, 1),
        )
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    col = len(data[line_start : exc.start].decode("utf-8", errors="replace")) + 1
    return error(
        f"invalid UTF-8: byte 0x{data[exc.start]:02X} ({exc.reason})",
        "manifests are UTF-8 text; save the file as UTF-8",
        source=Source(file, line, col),
    )


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
            diags.extend([problem] if problem is not None else [])
            continue
        d, e = parse_text(text, rel, path.parent, limits=limits)
        diags.extend(e)
        if len(docs) + len(d) > limits.max_documents:
            over = d[limits.max_documents - len(docs)]
            docs.extend(d[: limits.max_documents - len(docs)])
            summary, detail = limits.exceeded("max_documents", f"document {limits.max_documents + 1:,} of the fleet")
            diags.append(error(summary, detail, source=over.source()))
            break
        docs.extend(d)
    return docs, diags
