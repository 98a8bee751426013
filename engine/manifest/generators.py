"""ThingSet: many devices from a CSV (or a numeric range) and a template, so a 100,000-device fleet is a few
lines of YAML and a CSV.

Why a generator and not a loop in a script: the generated documents are ordinary documents. `generate` runs
right after YAML loading and before validation (engine/manifest/fleet.py calls each kind's `generate` hook),
so every generated resource goes through the envelope, schema, address, reference and expand stages like a
hand-written one, and the plan, the diff and the journal never know a generator was involved.

```yaml
apiVersion: fleetctl.io/v1
kind: ThingSet
metadata: {name: esp32-fleet}
spec:
  csv: {file: devices.csv, id: mac}        # or: range: {start: 1, count: 100000, width: 6}
  template:                                  # documents of any registered kind; ${id}, ${index}, ${column}
    - apiVersion: aws.fleetctl.io/v1
      kind: Certificate                      # leave it out when the policy sits on the thing group (JITP/JITR)
      metadata: {name: "esp32-${mac|compact}", target: aws-eu}
      spec: {certificatePem: {file: "certs/${mac|compact}.pem"}}
    - apiVersion: aws.fleetctl.io/v1
      kind: Thing
      metadata: {name: "esp32-${mac|compact}", target: aws-eu, labels: {site: "${site}"}}
      spec: {thingType: esp32, groups: [esp32-fleet], principals: ["esp32-${mac|compact}"]}
```

Substitution: `${name}` or `${name|filter}` (filters: lower, upper, compact — drops `:` and `-`) in any string
or key of the template; `$${...}` is a literal `${...}`. Only identifiers are variables, so AWS policy
variables such as `${iot:Connection.Thing.ThingName}` pass through untouched. An unknown variable is an error
at its template line.

Diagnostics of a generated document point at the template line and name the data row
(`Source.origin = "fleet/devices.csv:42"`). The same mistake repeated on every row (a template error) is folded
into one diagnostic at the template line by `fold`, so a typo does not print 100,000 errors.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from engine.diagnostics import Diagnostic, Diagnostics, Source, error
from engine.kinds import KindDecl, register
from engine.manifest.confine import FilePolicy, FileRefError
from engine.manifest.limits import DEFAULT as DEFAULT_LIMITS
from engine.manifest.limits import Limits
from engine.manifest.loader import Document, Path_, line_col, read_text
from engine.manifest.types import Strict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_VAR = re.compile(r"\$(\$)?\{(" + IDENT + r")((?:\|[a-z_]+)*)\}")
FILTERS: dict[str, Callable[[str], str]] = {
    "lower": str.lower,
    "upper": str.upper,
    "compact": lambda v: v.replace(":", "").replace("-", ""),
}
FOLD_AT = 3  # identical diagnostics on more rows than this fold into one
KEEP_PER_TEMPLATE = 50  # per-row diagnostics kept per template document before "… and N more"


class CsvSource(Strict):
    file: str = Field(description="CSV with a header row; relative to this manifest's folder, then the fleet root")
    id: str | None = Field(
        None,
        pattern="^" + IDENT + "$",
        description="column that is ${id} and must be unique (default: the first column)",
    )


class RangeSource(Strict):
    start: int = Field(1, ge=0)
    count: int = Field(ge=1, description="rows (at most FLEETCTL_MAX_ROWS, engine/manifest/limits.py)")
    width: int = Field(0, ge=0, le=20, description="zero-pad ${id} to this many digits")


class ThingSetSpec(Strict):
    csv: CsvSource | None = None
    range: RangeSource | None = None
    template: list[dict[str, Any]] = Field(min_length=1, description="documents generated once per row")

    @model_validator(mode="after")
    def _one_source(self) -> ThingSetSpec:
        if (self.csv is None) == (self.range is None):
            raise ValueError("a ThingSet has exactly one of: csv, range")
        return self


class GeneratedDocument:
    """A document made from a template document and one row: it reads like a loader Document (data, file,
    positions, base_dir, source). Its data is rendered when read (validation reads it once), so 100,000 rows
    hold one small slotted object each, not a document tree each. Positions are the template's, shared;
    `source` points at the template line and names the row in `origin`."""

    __slots__ = ("template", "template_prefix", "builder", "row")

    def __init__(self, template: Document, prefix: Path_, builder: Any, row: Row) -> None:
        self.template, self.template_prefix, self.builder, self.row = template, prefix, builder, row

    # what a Document holds, read from the ThingSet document instead of copied into each of 100,000 rows
    file = property(lambda self: self.template.file)
    index = property(lambda self: self.template.index)
    positions = property(lambda self: self.template.positions)
    base_dir = property(lambda self: self.template.base_dir)

    @property
    def data(self) -> Any:
        return _render(self.builder, self.row.values)

    @property
    def origin(self) -> str:
        return self.row.origin

    def source(self, path: Path_ = ()) -> Source:
        positions = self.template.positions
        path = self.template_prefix + tuple(path)
        while path and path not in positions:
            path = path[:-1]
        line, col = positions.get(path, (0, 0))
        return Source(self.template.file, line, col, self.row.origin)


@dataclass(frozen=True, slots=True)
class Row:
    values: dict[str, str]
    origin: str  # "fleet/devices.csv:42" or "ThingSet esp32-fleet #17"


# ---------------------------------------------------------------------------------------------- substitution
def _compile_string(
    text: str, where: Callable[[], Source], known: set[str], diags: Diagnostics, used: set[str]
) -> str | Callable[[dict[str, str]], str]:
    """A constant (no variable) or a function of the row; unknown variables and filters are reported once."""
    if "$" not in text:
        return text
    parts: list[str | tuple[str, tuple[str, ...]]] = []
    last = 0
    for m in _VAR.finditer(text):
        parts.append(text[last : m.start()])
        last = m.end()
        if m.group(1):  # $${x}: a literal ${x}
            parts.append(m.group(0)[1:])
            continue
        name, filters = m.group(2), tuple(f for f in m.group(3).split("|") if f)
        bad = [f for f in filters if f not in FILTERS]
        if name not in known or bad:
            summary = (
                f"unknown variable ${{{name}}}"
                if name not in known
                else f"unknown filter '{bad[0]}' in ${{{name}|{'|'.join(filters)}}}"
            )
            detail = (
                f"variables: {', '.join('${' + k + '}' for k in sorted(known))}"
                if name not in known
                else f"filters: {', '.join(sorted(FILTERS))}"
            )
            diags.add(error(summary, detail, source=where()))
            parts.append(m.group(0))
            continue
        used.add(name)
        parts.append((name, filters))
    parts.append(text[last:])
    if all(isinstance(p, str) for p in parts):
        return "".join(p for p in parts if isinstance(p, str))

    def render(row: dict[str, str]) -> str:
        out = []
        for p in parts:
            if isinstance(p, str):
                out.append(p)
            else:
                value = row[p[0]]
                for f in p[1]:
                    value = FILTERS[f](value)
                out.append(value)
        return "".join(out)

    return render


def _compile(node: Any, path: Path_, doc: Document, known: set[str], diags: Diagnostics, used: set[str]) -> Any:
    """The template node as a builder: constants stay shared between rows, only variable parts are rebuilt."""

    def where() -> Source:
        return doc.source(path)

    if isinstance(node, str):
        return _compile_string(node, where, known, diags, used)
    if isinstance(node, dict):
        items = [
            (
                _compile_string(k, where, known, diags, used) if isinstance(k, str) else k,
                _compile(v, path + (k,), doc, known, diags, used),
            )
            for k, v in node.items()
        ]
        if not any(callable(k) or callable(v) for k, v in items):
            return node
        return _Build(dict, items)
    if isinstance(node, list):
        built = [_compile(v, path + (i,), doc, known, diags, used) for i, v in enumerate(node)]
        if not any(callable(v) for v in built):
            return node
        return _Build(list, built)
    return node


@dataclass(frozen=True)
class _Build:
    shape: type
    items: list[Any]

    def __call__(self, row: dict[str, str]) -> Any:
        if self.shape is dict:
            return {(k(row) if callable(k) else k): _render(v, row) for k, v in self.items}
        return [_render(v, row) for v in self.items]


def _render(node: Any, row: dict[str, str]) -> Any:
    return node(row) if callable(node) else node


# ---------------------------------------------------------------------------------------------- rows
def _resolve(doc: Document, root: Path, name: str) -> Path | FileRefError:
    """The CSV file: fleet data, so inside the fleet folder (after symlinks), never through an allowance."""
    try:
        return FilePolicy.of(root).locate(name, (doc.base_dir, root))
    except FileRefError as exc:
        return exc


def _relative(path: Path, root: Path) -> str:
    base = root.parent if root.parent != root else root
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return str(path)


def _csv_rows(
    doc: Document, spec: CsvSource, root: Path, diags: Diagnostics, limits: Limits = DEFAULT_LIMITS
) -> tuple[list[Row], list[str]] | None:
    at = doc.source(("spec", "csv", "file"))
    path = _resolve(doc, root, spec.file)
    if isinstance(path, FileRefError):
        diags.add(error(f"CSV {path}", source=at, field="spec.csv.file"))
        return None
    rel = _relative(path, root)
    text, problem = read_text(path, rel, limits, what="CSV")
    if text is None:
        assert problem is not None  # read_text gives its reason with every None
        diags.add(problem)
        return None
    text = text.removeprefix("\ufeff")
    if "\0" in text:  # the csv module takes NUL as data; a CSV of device rows never holds one
        line, col = line_col(text, text.index("\0"))
        diags.add(
            error(
                "the CSV file holds a NUL character",
                "a CSV of device rows is text; remove it",
                source=Source(rel, line, col),
            )
        )
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        diags.add(error("the CSV file is empty (it needs a header row)", source=Source(rel, 1, 1)))
        return None
    except csv.Error as exc:
        diags.add(error(f"invalid CSV: {exc}", source=Source(rel, 1, 1)))
        return None
    bad = [h for h in header if not re.fullmatch(IDENT, h)]
    if bad or len(set(header)) != len(header):
        diags.add(
            error(
                f"CSV header column names must be unique identifiers (letters, digits, _): "
                f"{', '.join(repr(b) for b in bad) or 'duplicate column'}",
                f"header: {', '.join(header)}",
                source=Source(rel, 1, 1),
            )
        )
        return None
    id_col = spec.id or header[0]
    if id_col not in header:
        diags.add(
            error(
                f"id column '{id_col}' is not in the CSV header",
                f"header: {', '.join(header)}",
                source=doc.source(("spec", "csv", "id")),
                field="spec.csv.id",
            )
        )
        return None
    rows: list[Row] = []
    seen: dict[str, int] = {}
    line = reader.line_num
    try:
        for record in reader:
            start, line = line + 1, reader.line_num
            if not record or all(not v.strip() for v in record):
                continue
            where = Source(rel, start, 1)
            if len(record) != len(header):
                diags.add(
                    error(
                        f"row has {len(record)} value(s), the header has {len(header)}",
                        f"header: {', '.join(header)}",
                        source=where,
                    )
                )
                continue
            values = {h: v.strip() for h, v in zip(header, record, strict=True)}
            key = values[id_col]
            if not key:
                diags.add(error(f"empty id (column '{id_col}')", source=where))
                continue
            if key in seen:
                diags.add(
                    error(f"duplicate id '{key}' (column '{id_col}')", f"first at {rel}:{seen[key]}", source=where)
                )
                continue
            if len(rows) >= limits.max_rows:
                summary, detail = limits.exceeded("max_rows", f"row {limits.max_rows + 1:,} of the CSV")
                diags.add(error(summary, detail, source=where))
                return None
            seen[key] = start
            values["id"], values["index"] = key, str(len(rows))
            rows.append(Row(values, f"{rel}:{start}"))
    except csv.Error as exc:
        diags.add(error(f"invalid CSV: {exc}", source=Source(rel, line + 1, 1)))
        return None
    return rows, header


def _range_rows(name: str, spec: RangeSource) -> list[Row]:
    return [
        Row({"id": str(n).zfill(spec.width), "index": str(i)}, f"ThingSet {name} #{n}")
        for i, n in enumerate(range(spec.start, spec.start + spec.count))
    ]


# ---------------------------------------------------------------------------------------------- generate
def generate(doc: Document, root: Path, diags: Diagnostics, limits: Limits = DEFAULT_LIMITS) -> list[Any]:
    """The documents a ThingSet stands for: one per (row, template document). An invalid ThingSet spec
    generates nothing (the validation stage reports it); row and template problems are reported here."""
    data = doc.data
    try:
        spec = ThingSetSpec.model_validate(data.get("spec") or {})
        name = str(data["metadata"]["name"])
    except (ValidationError, KeyError, TypeError):
        return []
    if spec.csv is not None:
        loaded = _csv_rows(doc, spec.csv, root, diags, limits)
        if loaded is None:
            return []
        rows, header = loaded
        known = {"id", "index", *header}
    else:
        assert spec.range is not None
        if spec.range.count > limits.max_rows:
            summary, detail = limits.exceeded("max_rows", f"a range of {spec.range.count:,} rows")
            diags.add(error(summary, detail, source=doc.source(("spec", "range", "count")), field="spec.range.count"))
            return []
        rows, known = _range_rows(name, spec.range), {"id", "index"}
    builders: list[tuple[Path_, Any]] = []
    used: set[str] = set()
    for k, template in enumerate(spec.template):
        prefix = ("spec", "template", k)
        if str(template.get("kind")) == "ThingSet":
            diags.add(
                error(
                    "a ThingSet template cannot contain a ThingSet",
                    source=doc.source(prefix + ("kind",)),
                    field=f"spec.template.{k}.kind",
                )
            )
            continue
        before = len(diags)
        builder = _compile(template, prefix, doc, known, diags, used)
        if len(diags) == before:
            builders.append((prefix, builder))
    rows = _safe_path_rows(rows, _path_variables(spec.template), diags)
    if "index" not in used:  # 100,000 rows need not carry a row number nobody substitutes
        for row in rows:
            del row.values["index"]
    out: list[Any] = []
    for row in rows:
        for prefix, builder in builders:
            out.append(GeneratedDocument(doc, prefix, builder, row))
    return out


def _path_variables(template: Any) -> set[str]:
    """Variables substituted into a file path of the template (`{file: "certs/${mac}.pem"}`, `csv: {file: …}`)."""
    found: set[str] = set()
    if isinstance(template, dict):
        for key, value in template.items():
            if key == "file" and isinstance(value, str):
                found.update(m.group(2) for m in _VAR.finditer(value) if not m.group(1))
            else:
                found |= _path_variables(value)
    elif isinstance(template, list):
        for value in template:
            found |= _path_variables(value)
    return found


def path_value_problem(value: str) -> str | None:
    """Why a row value cannot be part of a file path (a path separator, `.`/`..`, a leading `~`, NUL), or None:
    a CSV row must not steer a template's file reference to another folder (engine/manifest/confine.py fences
    what is left)."""
    if "/" in value or "\\" in value:
        return "holds a path separator"
    if value in (".", "..") or value.startswith("~") or "\x00" in value:
        return "is not a plain file name part"
    return None


def _safe_path_rows(rows: list[Row], names: set[str], diags: Diagnostics) -> list[Row]:
    """The rows whose values substituted into file paths are plain file name parts; the others are errors at
    their CSV line (and generate nothing)."""
    if not names:
        return rows
    out: list[Row] = []
    for row in rows:
        bad = [
            (n, p) for n in sorted(names) if n in row.values and (p := path_value_problem(row.values[n])) is not None
        ]
        if not bad:
            out.append(row)
            continue
        file, _, line = row.origin.rpartition(":")
        where = Source(file, int(line), 1) if line.isdigit() else None
        for name, problem in bad:
            diags.add(
                error(
                    f"column '{name}' is substituted into a file path and its value {problem}",
                    "a ThingSet row names a file only inside the template's folder",
                    source=where,
                )
            )
    return out


def expand_all(
    docs: list[Document],
    root: Path,
    diags: Diagnostics,
    lookup: Callable[[str, str], KindDecl | None],
    limits: Limits = DEFAULT_LIMITS,
) -> list[Any]:
    """Every document, with each generator document followed by what it generates (GeneratedDocuments).
    A generator whose documents would take the fleet past FLEETCTL_MAX_DOCUMENTS generates none."""
    out: list[Any] = []
    for i, doc in enumerate(docs):
        out.append(doc)
        if isinstance(doc.data, dict):
            decl = lookup(str(doc.data.get("apiVersion", "")), str(doc.data.get("kind", "")))
            if decl is not None and decl.generate is not None:
                made = decl.generate(doc, root, diags, limits=limits)
                if len(out) + len(made) + len(docs) - i - 1 > limits.max_documents:
                    summary, detail = limits.exceeded(
                        "max_documents",
                        f"with the {len(made):,} documents this generator makes, the fleet's "
                        f"{len(out) + len(made) + len(docs) - i - 1:,} documents",
                    )
                    diags.add(error(summary, detail, source=doc.source(("spec", "template")), field="spec.template"))
                    continue
                out.extend(made)
    return out


def release(manifests: list[Any]) -> list[Any]:
    """The manifests without the documents generators made. Their desired resources are all a plan needs;
    100,000 validated documents (pydantic models, envelopes, rows) are the largest thing a plan holds, and
    dropping them before the read keeps a 100,000-device plan's memory at what loading it took."""
    return [m for m in manifests if not isinstance(m.doc, GeneratedDocument)]


def fold(items: list[Diagnostic]) -> list[Diagnostic]:
    """Fold the same diagnostic on many generated rows into one at the template line, and cap the per-row
    rest per template document; diagnostics of hand-written documents pass unchanged, in order."""
    groups: dict[tuple[Any, ...], list[Diagnostic]] = {}
    for d in items:
        if d.source is not None and d.source.origin:
            key = (d.severity, d.summary, d.field, d.source.file, d.source.line, d.source.col)
            groups.setdefault(key, []).append(d)
    out: list[Diagnostic] = []
    kept: dict[tuple[str, int], int] = {}
    dropped: dict[tuple[str, int], list[Diagnostic]] = {}
    done: set[tuple[Any, ...]] = set()
    for d in items:
        if d.source is None or not d.source.origin:
            out.append(d)
            continue
        key = (d.severity, d.summary, d.field, d.source.file, d.source.line, d.source.col)
        same = groups[key]
        if len(same) > FOLD_AT:
            if key not in done:
                done.add(key)
                rows = ", ".join(x.source.origin for x in same[:FOLD_AT] if x.source)
                out.append(
                    replace(
                        d,
                        address=None,
                        source=replace(d.source, origin=""),
                        detail=(d.detail + "; " if d.detail else "")
                        + f"on {len(same)} generated documents (rows {rows}, …)",
                    )
                )
            continue
        template = (d.source.file, d.source.line)
        if kept.get(template, 0) >= KEEP_PER_TEMPLATE:
            dropped.setdefault(template, []).append(d)
            continue
        kept[template] = kept.get(template, 0) + 1
        out.append(d)
    for (file, line), rest in sorted(dropped.items()):
        out.append(
            replace(
                rest[0],
                summary=f"… and {len(rest)} more error(s) in documents generated from the template at {file}:{line}",
                detail="",
                address=None,
                field=None,
                source=Source(file, line),
            )
        )
    return out


register(
    KindDecl(
        "fleetctl.io",
        "ThingSet",
        "fleetctl",
        ThingSetSpec,
        rank=0,
        targeted=False,
        generate=generate,
        description="Many devices from a CSV or a numeric range and a template of documents.",
    )
)
