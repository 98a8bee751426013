"""How one field change reads, in every view (plan text and markdown, `show --address`, drift, history).

A change is one or more lines, each led by its symbol (`+` added, `-` removed, `~` changed; a space for the
unchanged context of a unified diff) so a terminal can colour by the first character after the indentation and
a markdown `diff` block by the first character of the line. Nothing is ever cut:

- a short value stays on the change's line: `~ attributes.site: "paris" → "lyon"`;
- a map or list is shown pretty-printed (sorted keys, 2-space indent) on lines of its own, every line with the
  change's symbol, so an added policy statement shows every key and value as `+` lines;
- a changed map or list that was not diffed further (a type change, a kind's own value) and a changed multi-line
  string are shown as a unified diff (difflib) of their pretty-printed forms, with full context;
- a long line is folded at FOLD characters (the pieces join back to the exact text);
- a sensitive value is `(sensitive)`, whatever the change holds.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from engine.model import ADD, OP_SYMBOL, REMOVE, SENSITIVE

LINE = 120  # a change that fits in this many characters (indentation included) stays on one line
FOLD = 160  # characters of a value line beyond which it is folded (ARNs in policies are ~100)
BODY = "    "  # the indentation of a value's lines under its path


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _shown(value: Any) -> str:
    """A masked side: (sensitive), or null where there is no value."""
    return "null" if value is None else SENSITIVE


def fold(text: str, width: int = FOLD) -> list[str]:
    """`text` over lines of at most `width` characters, broken after a space where one is near the end; each
    continuation keeps the line's indentation plus two spaces. Without that added indentation the pieces join
    back to the exact text (a fold, never a cut)."""
    if len(text) <= width:
        return [text]
    body = text.lstrip(" ")
    lead = text[: len(text) - len(body)]
    room = max(width - len(lead) - 2, 20)
    pieces = []
    while len(body) > room:
        cut = body.rfind(" ", room // 2, room) + 1 or room
        pieces.append(body[:cut])
        body = body[cut:]
    pieces.append(body)
    return [lead + pieces[0]] + [lead + "  " + piece for piece in pieces[1:]]


def _pretty(value: Any) -> list[str]:
    """The lines a value is shown as: a multi-line string line by line (its last newline is said by the `|` or
    `|-` of the path line), anything else as indented JSON."""
    if isinstance(value, str) and "\n" in value:
        return value[:-1].split("\n") if value.endswith("\n") else value.split("\n")
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).split("\n")


def _block(symbol: str, lines: list[str]) -> list[tuple[str, str]]:
    return [(symbol, BODY + piece) for line in lines for piece in fold(line)]


def _head(value: Any) -> str:
    """What follows `path:` on the first line of a value shown on lines of its own."""
    if isinstance(value, str) and "\n" in value:
        return " |" if value.endswith("\n") else " |-"  # YAML's block scalar: keep / strip the last newline
    return ""


def _multiline(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value


def _whole(symbol: str, path: str, value: Any, indent: str) -> list[tuple[str, str]]:
    text = _compact(value)
    if len(indent) + len(path) + len(text) + 4 <= LINE and not _multiline(value):
        return [(symbol, f"{path}: {text}")]
    if isinstance(value, (dict, list)) or (isinstance(value, str) and "\n" in value):
        return [(symbol, f"{path}:{_head(value)}")] + _block(symbol, _pretty(value))
    return [(symbol, f"{path}:")] + _block(symbol, [text])


def field_pairs(
    op: str, path: str, before: Any, after: Any, *, sensitive: bool = False, indent: str = "      "
) -> list[tuple[str, str]]:
    """The lines of one change as (symbol, text) pairs; `indent` is only used to decide what fits one line."""
    if sensitive or SENSITIVE in (before, after):
        shown = {ADD: SENSITIVE, REMOVE: SENSITIVE}.get(op, f"{_shown(before)} → {_shown(after)}")
        return [(OP_SYMBOL[op], f"{path}: {shown}")]
    if op == ADD:
        return _whole(OP_SYMBOL[ADD], path, after, indent)
    if op == REMOVE:
        return _whole(OP_SYMBOL[REMOVE], path, before, indent)
    b, a = _compact(before), _compact(after)
    structured = any(isinstance(v, (dict, list)) or _multiline(v) for v in (before, after))
    if len(indent) + len(path) + len(b) + len(a) + 7 <= LINE and not (_multiline(before) or _multiline(after)):
        return [("~", f"{path}: {b} → {a}")]
    if not structured:
        return [("~", f"{path}:")] + _block("-", [b]) + _block("+", [a])
    old, new = _pretty(before), _pretty(after)
    heads = (_head(before), _head(after))
    head = heads[0] if heads[0] == heads[1] else f" {heads[0].strip() or 'JSON'} → {heads[1].strip() or 'JSON'}"
    out: list[tuple[str, str]] = [("~", f"{path}:{head}")]
    diff = difflib.unified_diff(old, new, lineterm="", n=max(len(old), len(new)))
    for line in diff:
        if line.startswith(("---", "+++", "@@")):
            continue
        out += _block(line[0] if line[0] in "+-" else " ", [line[1:]])
    return out


def field_lines(
    op: str, path: str, before: Any, after: Any, *, sensitive: bool = False, indent: str = "      "
) -> list[str]:
    """Terminal lines: the indentation, then the symbol, then the text."""
    return [
        f"{indent}{symbol} {text}" if text.strip() else f"{indent}{symbol}"
        for symbol, text in field_pairs(op, path, before, after, sensitive=sensitive, indent=indent)
    ]


def markdown_lines(
    op: str, path: str, before: Any, after: Any, *, sensitive: bool = False, indent: str = "    "
) -> list[str]:
    """Lines of a markdown `diff` block: the symbol first (GitHub colours `+`, `-` and `!`), then the indent."""
    return [
        f"{'!' if symbol == '~' else symbol}{indent}{text}" if text.strip() else symbol
        for symbol, text in field_pairs(op, path, before, after, sensitive=sensitive, indent=indent)
    ]
