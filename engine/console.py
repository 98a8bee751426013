"""Where fleetctl's output for people is coloured, and how: the terminal conventions in one place.

The renderers (engine/plan/render.py, drilldown.py, lint, audit) produce plain text and never think about
terminals. This module decides, per stream, whether colour is on, and styles already rendered text line by line
from what the line starts with after its indentation:

    + green (create, added)    - red (delete, removed)    ~ yellow (update)    -/+ magenta (replace)
    ! bold red (needs attention)    [!flag] markers bold    error: red    warning:/skipped: yellow
    summary and section lines (Plan:, Drift:, Needs attention, Apply …:) bold

Styling only wraps characters in SGR sequences (rendered by rich's `Style.render`, no hand-written escape
codes); it never adds, drops or changes a character, so with the SGR sequences removed the styled text is the
plain text, and output without colour is byte-identical to what the renderer produced.

When colour is on (checked in this order; the first rule that decides wins):
1. `--color=never` / `--no-color` → off; `--color=always` → on (the command line beats the environment);
2. `NO_COLOR` set to any non-empty value → off (https://no-color.org);
3. `FORCE_COLOR` set to any non-empty value → on (https://force-color.org), also when piped;
4. otherwise on exactly when the stream is a terminal and TERM is not `dumb`.

Machine formats (`--format json`, SARIF, markdown meant for a pull-request comment, `sandbox env` export lines)
are written with `style=False` and are never styled, whatever the rules say.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import click
from rich.color import ColorSystem
from rich.style import Style

COLOR_MODES = ("auto", "always", "never")
META_KEY = "fleetctl.color"  # click context meta: the mode the global --color/--no-color option chose

# leading symbol (after indentation) → style; longest first so that -/+ is not read as -
SYMBOL_STYLES: tuple[tuple[str, str], ...] = (
    ("-/+", "magenta"),
    ("+", "green"),
    ("-", "red"),
    ("~", "yellow"),
    ("!", "bold red"),
)
FLAG = re.compile(r"\[![^\]\n]*\]")  # the attention markers on change lines: [!permissions-widened]
_SEVERITY = re.compile(r"^\s*(?:\S+:\d+(?::\d+)?: )?(?:[A-Z]{2,}\d{3} )?(error|warning|skipped)(?=:)")
_SEVERITY_STYLES = {"error": "red", "warning": "yellow", "skipped": "yellow"}
_HEADINGS = ("Plan:", "Drift:", "Needs attention", "No changes.", "In sync:", "Apply:", "Apply ")
_DIFF_HEADERS = ("--- ", "+++ ", "@@ ")  # unified-diff headers inside folded values
_AFTER_SIGN = " \t{}[]\"'"  # what may follow a bare +/- of a unified-diff line


def color_enabled(mode: str, stream: IO[Any] | None, env: Mapping[str, str] | None = None) -> bool:
    """Whether text written to `stream` is coloured, by the rules of the module docstring."""
    env = os.environ if env is None else env
    if mode not in COLOR_MODES:
        raise ValueError(f"colour mode must be one of {', '.join(COLOR_MODES)}, not {mode!r}")
    if mode != "auto":
        return mode == "always"
    if env.get("NO_COLOR"):  # set to a non-empty value (an empty NO_COLOR is not set)
        return False
    if env.get("FORCE_COLOR"):
        return True
    try:
        tty = bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # a closed or unusual stream
        tty = False
    return tty and env.get("TERM") != "dumb"


def _symbol_style(content: str) -> str | None:
    for symbol, style in SYMBOL_STYLES:
        if not content.startswith(symbol):
            continue
        rest = content[len(symbol) :]
        if symbol in ("+", "-") and rest[:1] == symbol:  # "--> file", "---", "++"
            return None
        if not rest or rest[0] in " \t" or (symbol in ("+", "-") and rest[0] in _AFTER_SIGN):
            return style
        return None
    return None


def line_style(line: str) -> str | None:
    """The style of a whole line (None: unstyled), from its leading symbol, severity prefix or heading."""
    content = line.lstrip(" ")
    if not content:
        return None
    if content.startswith(_DIFF_HEADERS):
        return "bold"
    severity = _SEVERITY.match(line)
    if severity:
        return _SEVERITY_STYLES[severity.group(1)]
    style = _symbol_style(content)
    if style:
        return style
    if line.startswith(_HEADINGS):
        return "bold"
    return None


def _render(text: str, style: str | None) -> str:
    if not style or not text:
        return text
    return Style.parse(style).render(text, color_system=ColorSystem.STANDARD)


def style_line(line: str) -> str:
    """One line (without its newline) with SGR styling; the indentation stays unstyled."""
    base = line_style(line)
    flags = list(FLAG.finditer(line))
    if base is None and not flags:
        return line
    indent = len(line) - len(line.lstrip(" "))
    out = [line[:indent]]
    at = indent
    for m in flags:
        out.append(_render(line[at : m.start()], base))
        out.append(_render(m.group(0), f"{base} bold" if base else "bold"))
        at = m.end()
    out.append(_render(line[at:], base))
    return "".join(out)


def style_text(text: str) -> str:
    """Rendered text, styled line by line (line endings kept exactly)."""
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        out.append(style_line(body) + line[len(body) :])
    return "".join(out)


SGR = re.compile(r"\x1b\[[0-9;]*m")


def strip_styles(text: str) -> str:
    """`text` without SGR sequences: for any rendered `t`, strip_styles(style_text(t)) == t."""
    return SGR.sub("", text)


@dataclass(frozen=True)
class Console:
    """The output channel for people: plain text in, styled text out where colour is on."""

    mode: str = "auto"
    env: Mapping[str, str] | None = None

    def stream(self, err: bool) -> IO[Any]:
        return sys.stderr if err else sys.stdout

    def color(self, err: bool = False) -> bool:
        return color_enabled(self.mode, self.stream(err), self.env)

    def echo(self, text: str, *, err: bool = False, nl: bool = True, style: bool = True) -> None:
        """Write `text` (plain, as a renderer made it) to stdout or stderr, styled when colour is on there."""
        if style and self.color(err):
            click.echo(style_text(text), err=err, nl=nl, color=True)
        else:
            click.echo(text, err=err, nl=nl)


def current() -> Console:
    """The console of the running command: the mode the global --color/--no-color option set (auto outside a
    command, e.g. for library callers)."""
    ctx = click.get_current_context(silent=True)
    mode = ctx.find_root().meta.get(META_KEY, "auto") if ctx is not None else "auto"
    return Console(mode)


def echo(text: str, *, err: bool = False, nl: bool = True, style: bool = True) -> None:
    """`current().echo(...)`: what every command prints for people goes through here."""
    current().echo(text, err=err, nl=nl, style=style)


def _set_mode(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if param.name == "no_color" and value:
        ctx.meta[META_KEY] = "never"
    elif param.name == "color" and value:
        ctx.meta[META_KEY] = value


def add_color_options(command: click.Command) -> None:
    """`--color`/`--no-color` after a subcommand too (`fleetctl plan --no-color`, as Terraform users type it): the
    same setting as the group's global option, kept in the shared context meta, never passed to the command."""
    names = {n for p in command.params for n in getattr(p, "opts", [])}
    if "--color" not in names:
        command.params.append(
            click.Option(
                ["--color"],
                type=click.Choice(COLOR_MODES),
                default=None,
                expose_value=False,
                callback=_set_mode,
                metavar="[auto|always|never]",
                help="colour: auto, always or never (as the global option)",
            )
        )
    if "--no-color" not in names:
        command.params.append(
            click.Option(
                ["--no-color"],
                is_flag=True,
                expose_value=False,
                callback=_set_mode,
                help="no colour (as --color=never)",
            )
        )
    for sub in getattr(command, "commands", {}).values():
        add_color_options(sub)
