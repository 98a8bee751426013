"""Terminal conventions (engine/console.py): when colour is on, how rendered text is styled, and that styling never
changes a character; then the real CLI under a pseudo-terminal, piped, with NO_COLOR, FORCE_COLOR and --color."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import tty
from pathlib import Path

import pytest

from engine.console import SGR, color_enabled, line_style, strip_styles, style_text
from engine.model import Action, Address, Change, FieldChange
from engine.plan.model import Plan
from tests.conftest import ROOT, run_cli

PLAIN = """\
fleetctl plan p-1

Needs attention
  ! aws/aws-eu/Policy/p: permissions widened  [!permissions-widened]
  + aws/aws-eu/Thing/new
      attributes.site: "paris"
  ~ aws/aws-eu/Policy/p  [!permissions-widened]
      + document.Statement[Sid=Widen]: {"Action": "iot:*", "Effect": "Allow", "Resource": "*"}
      - document.Statement[Sid=Old]: {"Action": "iot:Connect"}
        +  "Sid": "Widen",
  -/+ aws/aws-eu/ThingType/t
  - aws/aws-eu/Thing/gone
fleet/things.yaml:3:5: error: aws/aws-eu/Thing/x: a secret cannot be resolved
    set FLEETCTL_X
warning: something to look at
--> not a change
-- nor this
Plan: 1 to create, 1 to update, 1 to replace, 1 to delete.
"""


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "mode, env, tty_stream, on",
    [
        ("auto", {}, True, True),
        ("auto", {}, False, False),  # piped
        ("auto", {"NO_COLOR": "1"}, True, False),  # no-color.org: any non-empty value
        ("auto", {"NO_COLOR": ""}, True, True),  # ... an empty one is not set
        ("auto", {"FORCE_COLOR": "1"}, False, True),  # force-color.org, also when piped
        ("auto", {"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),  # opting out wins
        ("auto", {"TERM": "dumb"}, True, False),
        ("never", {"FORCE_COLOR": "1"}, True, False),  # the command line beats the environment
        ("always", {"NO_COLOR": "1"}, False, True),
    ],
)
def test_when_colour_is_on(mode, env, tty_stream, on):
    assert color_enabled(mode, _Tty() if tty_stream else io.StringIO(), env) is on


def test_styles_follow_the_leading_symbol_and_never_change_a_character():
    styled = style_text(PLAIN)
    assert strip_styles(styled) == PLAIN  # byte-identical once the SGR codes are removed
    lines = dict(zip(PLAIN.splitlines(), styled.splitlines(), strict=True))
    assert lines["  + aws/aws-eu/Thing/new"] == "  \x1b[32m+ aws/aws-eu/Thing/new\x1b[0m"  # green
    assert lines["  - aws/aws-eu/Thing/gone"] == "  \x1b[31m- aws/aws-eu/Thing/gone\x1b[0m"  # red
    assert lines["  -/+ aws/aws-eu/ThingType/t"].startswith("  \x1b[35m-/+")  # magenta
    widened = lines["  ~ aws/aws-eu/Policy/p  [!permissions-widened]"]
    assert widened.startswith("  \x1b[33m~ aws/aws-eu/Policy/p")  # yellow
    assert "\x1b[1;33m[!permissions-widened]\x1b[0m" in widened  # flag bold
    assert lines[
        '      + document.Statement[Sid=Widen]: {"Action": "iot:*", "Effect": "Allow", "Resource": "*"}'
    ].startswith("      \x1b[32m+ document")
    assert lines['        +  "Sid": "Widen",'].startswith("        \x1b[32m+")
    assert line_style("fleet/things.yaml:3:5: error: aws/aws-eu/Thing/x: a secret cannot be resolved") == "red"
    assert line_style("warning: something to look at") == "yellow"
    assert line_style("  ! aws/aws-eu/Policy/p: permissions widened  [!permissions-widened]") == "bold red"
    assert line_style("Needs attention") == line_style("Plan: 1 to create.") == "bold"
    for plain in ("--> not a change", "-- nor this", "    set FLEETCTL_X", '      attributes.site: "paris"', ""):
        assert line_style(plain) is None and lines.get(plain, "") == plain


def test_line_endings_and_odd_characters_are_kept():
    text = "  + a\r\n  - b\n\tc\x0c\n~ d"
    assert strip_styles(style_text(text)) == text


# ------------------------------------------------------------------------------------------ the real CLI
def _plan_file(tmp_path: Path) -> Path:
    """A saved plan with one change of each action, written as `fleetctl plan --out` writes it."""

    def change(action: Action, name: str, **fields) -> Change:
        fc = tuple(FieldChange(k, None if action is Action.CREATE else "old", v) for k, v in fields.items())
        return Change(
            Address.of("aws", "aws-eu", "Thing", name),
            "aws.Thing",
            action,
            desired={} if action is Action.DELETE else {"attributes": fields},
            fields=fc,
            fingerprint="absent" if action is Action.CREATE else "v1",
        )

    plan = Plan(
        plan_id="p-colour",
        created_at="2026-11-21T10:00:00Z",
        git_commit="0" * 40,
        desired_digest="d",
        changes=(
            change(Action.CREATE, "new", site="paris"),
            change(Action.UPDATE, "moved", site="lyon"),
            change(Action.REPLACE, "retyped", site="nice"),
            change(Action.DELETE, "gone"),
        ),
    )
    path = tmp_path / "plan.json"
    path.write_text(plan.dumps(), encoding="utf-8")
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM", "FLEETCTL_PROGRESS")}
    return {**env, "PYTHONPATH": str(ROOT), "TERM": "xterm", **extra}


def run_in_pty(*args: str, env: dict[str, str], stderr_pipe: bool = False) -> tuple[int, bytes, bytes]:
    """`python -m engine.cli ARGS` with stdout (and stderr unless `stderr_pipe`) on a pseudo-terminal in raw
    mode (no \\r\\n translation), so what the program wrote is read back exactly."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE if stderr_pipe else slave,
        env=env,
        cwd=ROOT,
    )
    os.close(slave)
    out = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError("the CLI wrote nothing for 60 s under the pty")
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    err = proc.stderr.read() if proc.stderr else b""
    rc = proc.wait(timeout=60)
    os.close(master)
    return rc, bytes(out), err


def _piped(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, env=env, cwd=ROOT, timeout=120
    )


def test_show_is_coloured_on_a_terminal_and_plain_when_piped(tmp_path):
    planfile = str(_plan_file(tmp_path))
    rc, on_tty, _ = run_in_pty("show", planfile, env=_env())
    assert rc == 0
    assert SGR.search(on_tty.decode()), on_tty
    assert b"\x1b[32m+ aws/aws-eu/Thing/new" in on_tty and b"\x1b[31m- aws/aws-eu/Thing/gone" in on_tty
    assert b"\x1b[33m~ aws/aws-eu/Thing/moved" in on_tty and b"\x1b[35m-/+ aws/aws-eu/Thing/retyped" in on_tty
    piped = _piped("show", planfile, env=_env())
    assert piped.returncode == 0 and b"\x1b[" not in piped.stdout
    # the same characters: the piped output is the tty output without its SGR codes, and the renderer's text
    assert strip_styles(on_tty.decode()) == piped.stdout.decode()
    from engine.plan.model import load_plan
    from engine.plan.render import text

    assert piped.stdout.decode() == text(load_plan(planfile))
    # NO_COLOR under a terminal: none; --no-color and --color=never: none
    for env, extra in ((_env(NO_COLOR="1"), ()), (_env(), ("--no-color",)), (_env(), ("--color=never",))):
        rc, plain, _ = run_in_pty(*extra, "show", planfile, env=env)
        assert rc == 0 and b"\x1b[" not in plain and plain == piped.stdout
    # forced when piped: FORCE_COLOR, --color=always (the same bytes as on the terminal)
    for env, extra in (
        (_env(FORCE_COLOR="1"), ()),
        (_env(), ("--color=always",)),
        (_env(NO_COLOR="1"), ("--color", "always")),
    ):
        forced = _piped(*extra, "show", planfile, env=env)
        assert forced.returncode == 0 and forced.stdout == on_tty
    assert _piped("--no-color", "--color=always", "show", planfile, env=_env()).returncode == 2  # a usage error
    # after the subcommand too, as Terraform users type it
    assert _piped("show", planfile, "--color=always", env=_env()).stdout == on_tty
    rc, plain, _ = run_in_pty("show", planfile, "--no-color", env=_env())
    assert rc == 0 and plain == piped.stdout


def test_json_and_markdown_are_never_styled(tmp_path):
    planfile = str(_plan_file(tmp_path))
    rc, out, _ = run_in_pty("--color=always", "show", planfile, "--format", "json", env=_env(FORCE_COLOR="1"))
    assert rc == 0 and b"\x1b[" not in out
    assert json.loads(out)["planId"] == "p-colour"
    rc, md, _ = run_in_pty("show", planfile, "--format", "markdown", env=_env())
    assert rc == 0 and b"\x1b[" not in md and b"fleetctl plan `p-colour`" in md


def test_errors_on_stderr_are_red_on_a_terminal(tmp_path):
    planfile = str(_plan_file(tmp_path))
    rc, out, _ = run_in_pty("show", planfile, "--address", "aws/nowhere/*", env=_env())
    assert rc == 1 and out.startswith(b"\x1b[31merror: no change of plan p-colour matches aws/nowhere/*")
    piped = _piped("show", planfile, "--address", "aws/nowhere/*", env=_env())
    assert piped.stderr == strip_styles(out.decode()).encode()


def test_plan_under_a_terminal_with_json_on_stdout(aws_env, fleet_dir):
    """`fleetctl plan` of the example fleet (moto): coloured on a terminal; with --format json on the terminal,
    stdout is plain JSON even when colour is forced, and stderr (progress) never reaches stdout."""
    env = _env(**aws_env)
    rc, out, _ = run_in_pty("plan", str(fleet_dir), env=env, stderr_pipe=True)
    assert rc == 0, out
    assert b"\x1b[32m+ aws/aws-eu/" in out and b"\x1b[1mPlan: " in out
    piped = _piped("plan", str(fleet_dir), env=env)
    assert b"\x1b[" not in piped.stdout and strip_styles(out.decode()) == piped.stdout.decode()
    rc, js, err = run_in_pty(
        "plan", str(fleet_dir), "--format", "json", env=_env(**aws_env, FORCE_COLOR="1"), stderr_pipe=True
    )
    assert rc == 0 and b"\x1b[" not in js and json.loads(js)["changes"]


def test_in_process_runs_are_plain(aws_env, fleet_dir):
    """The click test runner is no terminal: the plain text, as before."""
    res = run_cli("plan", str(fleet_dir))
    assert res.exit_code == 0 and "\x1b[" not in res.output


def test_apply_shows_a_progress_bar_on_a_terminal(aws_env, fleet_dir, tmp_path):
    """On a terminal apply draws a rich progress bar on stderr (done/total, failures); the report stays on stdout."""
    planfile = str(tmp_path / "plan.json")
    assert run_cli("plan", str(fleet_dir), "--target", "aws-eu", "--out", planfile).exit_code == 0
    total = len(json.loads(Path(planfile).read_text(encoding="utf-8"))["changes"])
    rc, out, _ = run_in_pty("apply", planfile, "--fleet", str(fleet_dir), env=_env(**aws_env))
    text = strip_styles(out.decode())
    assert rc == 0, text
    assert "\x1b[?25l" in out.decode()  # rich's live display (cursor hidden while it runs)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "\n")  # cursor and erase codes too
    bar = [line for line in screen.splitlines() if line.startswith("apply ")]
    assert bar and f"{total}/{total}" in bar[-1] and "changes" in bar[-1] and "0 failed" in bar[-1], bar
    assert "━" in bar[-1]
    assert re.search(rf"Apply p-[0-9a-f]+: {total} applied, 0 failed, 0 skipped", text)
