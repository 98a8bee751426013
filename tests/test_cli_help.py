"""Every command's help lists its exit codes and the environment variables it reads (engine/clihelp.py), for
every registered command, the plugin commands of COMMAND_MODULES included; and every variable the engine reads
is described there, so the table cannot drift from the code."""

from __future__ import annotations

import re

import pytest

from engine.cli import COMMAND_MODULES, cli
from engine.clihelp import ALWAYS, COMMANDS, ENV, command_paths
from tests.conftest import ROOT, run_cli

PATHS = sorted(command_paths(cli))


def test_every_registered_command_is_declared():
    import importlib

    plugins = {
        c.name
        for module in COMMAND_MODULES
        for c in getattr(
            importlib.import_module(module), "commands", [getattr(importlib.import_module(module), "command", None)]
        )
        if c is not None
    }
    assert plugins <= set(PATHS)  # lint, history, journal, import
    assert {"", "plan", "apply", "drift", "show", "validate", "sandbox up"} <= set(PATHS)
    assert set(PATHS) == set(COMMANDS), "declare the exit codes and environment of every command in COMMANDS"


@pytest.mark.parametrize("path", PATHS)
def test_help_lists_exit_codes_and_environment(path):
    res = run_cli(*path.split(), "--help")
    assert res.exit_code == 0
    help_text = res.stdout
    exits, names = COMMANDS[path]
    block = help_text.split("Exit codes:", 1)[1].split("Environment:", 1)
    codes = re.findall(r"^\s+(\d)\s+\S", block[0], re.M)
    assert codes == [str(c) for c in sorted(exits)], help_text
    listed = re.findall(r"^\s+(\S+)\s{2,}\S", block[1], re.M)
    assert listed == [*names, *ALWAYS], help_text
    for name in listed:  # each with its one description, unwrapped
        assert re.search(rf"^\s+{re.escape(name)}\s+{re.escape(ENV[name])}$", block[1], re.M), name


def test_the_documented_codes_are_the_codes_commands_use():
    from engine import cli as cli_module

    assert (cli_module.EXIT_OK, cli_module.EXIT_ERROR, cli_module.EXIT_CHANGES) == (0, 1, 2)
    assert set(COMMANDS["plan"][0]) == {0, 1, 2} and set(COMMANDS["drift"][0]) == {0, 1, 2}
    assert set(COMMANDS["apply"][0]) == {0, 1} and set(COMMANDS["lint"][0]) == {0, 1, 2}


def _read_by_engine() -> set[str]:
    """Every environment variable the engine reads by name: env.get("X"), environ.get("X"), env["X"], ... and the
    `*_ENV = "X"` constants."""
    names: set[str] = set()
    pattern = re.compile(r"""(?:environ|env)(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]+)["']""")
    constant = re.compile(r"""^[A-Z_]*ENV\s*=\s*["']([A-Z][A-Z0-9_]+)["']""", re.M)
    for path in (ROOT / "engine").rglob("*.py"):
        if "sandbox" in path.parts[len(ROOT.parts) :] and path.name != "manager.py":
            continue  # the emulators' own settings are not the CLI's
        text = path.read_text(encoding="utf-8")
        names |= set(pattern.findall(text)) | set(constant.findall(text))
    return names


def test_every_variable_the_engine_reads_is_described():
    read = _read_by_engine()
    assert {
        "FLEETCTL_JOURNAL",
        "FLEETCTL_WORKERS",
        "FLEETCTL_NOW",
        "FLEETCTL_DEBUG",
        "FLEETCTL_DUMPS",
        "AWS_ENDPOINT_URL",
        "NO_COLOR",
        "FORCE_COLOR",
    } <= read
    missing = read - set(ENV)
    assert not missing, f"describe these in engine/clihelp.py ENV: {sorted(missing)}"


def test_no_command_lists_an_unknown_variable():
    for path, (_, names) in COMMANDS.items():
        assert set(names) <= set(ENV), path


def test_root_help_names_the_global_colour_options():
    res = run_cli("--help")
    assert "--color [auto|always|never]" in res.stdout and "--no-color" in res.stdout
