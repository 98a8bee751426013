"""Errors and warnings as values (Terraform's tfdiags is the model).

Every stage of fleetctl (load, validate, plan, apply) collects `Diagnostic`s instead of raising on the first
problem, so a user sees every mistake at once, each naming the file, line, column, field and what was expected.
Only the CLI turns diagnostics into text and exit codes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True, slots=True)
class Source:
    """Where something was written: a manifest file and a 1-based line and column.

    `origin` is set for documents a generator (ThingSet) made: the data row they came from (`devices.csv:42`),
    while file:line:col point at the template line.
    """

    file: str
    line: int = 0
    col: int = 0
    origin: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col or 1}" if self.line else self.file
        return f"{self.origin}, template {where}" if self.origin else where


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    summary: str
    detail: str = ""
    source: Source | None = None
    address: str | None = None
    field: str | None = None

    def render(self) -> str:
        where = f"{self.source}: " if self.source else ""
        what = f"{self.address}: " if self.address else ""
        fld = f"field '{self.field}': " if self.field else ""
        text = f"{where}{self.severity.value}: {what}{fld}{self.summary}"
        if self.detail:
            text += f"\n    {self.detail}"
        return text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity.value, "summary": self.summary}
        if self.detail:
            out["detail"] = self.detail
        if self.source:
            out["source"] = {
                "file": self.source.file,
                "line": self.source.line,
                "col": self.source.col,
                **({"origin": self.source.origin} if self.source.origin else {}),
            }
        if self.address:
            out["address"] = self.address
        if self.field:
            out["field"] = self.field
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Diagnostic:
        src = data.get("source")
        return cls(
            Severity(data["severity"]),
            data["summary"],
            data.get("detail", ""),
            Source(src["file"], src.get("line", 0), src.get("col", 0), src.get("origin", "")) if src else None,
            data.get("address"),
            data.get("field"),
        )


def error(
    summary: str,
    detail: str = "",
    *,
    source: Source | None = None,
    address: str | None = None,
    field: str | None = None,
) -> Diagnostic:
    return Diagnostic(Severity.ERROR, summary, detail, source, address, field)


def warning(
    summary: str,
    detail: str = "",
    *,
    source: Source | None = None,
    address: str | None = None,
    field: str | None = None,
) -> Diagnostic:
    return Diagnostic(Severity.WARNING, summary, detail, source, address, field)


@dataclass
class Diagnostics:
    """An ordered collection; `has_errors` decides whether a stage may hand its result on."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diag: Diagnostic) -> None:
        self.items.append(diag)

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        self.items.extend(diags)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=lambda d: (d.source or Source(""), d.address or "", d.summary))

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class FleetctlError(Exception):
    """Raised to abort a command with diagnostics already collected (CLI exits 1, prints them, no traceback)."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic | str) -> None:
        if isinstance(diagnostics, str):
            diagnostics = [error(diagnostics)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        super().__init__("; ".join(d.summary for d in self.diagnostics))
