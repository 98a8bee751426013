"""Problems as values for the device library.

Why: a fleet author must see every mistake in a device model, a DeviceConfig or a dump at once, each with
the field path (and, for files, the file and line) and what was expected. The library therefore returns
`Problem`s and, where an API must raise, raises one exception that carries all of them. The engine maps
them onto its own diagnostics; nothing here prints.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PathPart = str | int


@dataclass(frozen=True)
class Problem:
    """One error. `path` is the field path inside the document (``("spec", "values", "profile")``);
    `location` is ``file:line`` when the problem is in a file (dumps), else None."""

    path: tuple[PathPart, ...]
    message: str
    location: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        dotted = ".".join(str(part) for part in self.path)
        return f"{where}{dotted}: {self.message}" if dotted else f"{where}{self.message}"


class ProblemsError(Exception):
    """Raised by the APIs that must return a value or nothing; carries every problem found, never one."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class ModelError(ProblemsError):
    """A device model document is invalid."""


class DumpError(ProblemsError):
    """A dump could not be parsed, or does not belong to the model/device (R10)."""


class RenderError(ProblemsError):
    """Artifacts cannot be rendered without losing device state (e.g. a whole-partition NVS image)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
