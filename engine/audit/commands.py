"""The audit commands of the CLI (`fleetctl history`, `fleetctl journal`): options in, rendered reports out."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from engine import console
from engine.audit.git import Git
from engine.audit.history import history, render_history
from engine.audit.journal import journal_report, render_journal

TEXT_OR_JSON = click.Choice(["text", "json"])
F = TypeVar("F", bound=Callable[..., Any])


def fleet_and_format(fleet_help: str) -> Callable[[F], F]:
    """The --fleet and --format options every audit command takes."""

    def decorate(command: F) -> F:
        command = click.option("--format", "fmt", type=TEXT_OR_JSON, default="text", show_default=True)(command)
        return click.option(
            "--fleet", "fleet_path", default="fleet", show_default=True, type=click.Path(), help=fleet_help
        )(command)

    return decorate


@click.command("history")
@click.argument("address", required=False)
@click.option("--since", help="only commits after this revision (commit, tag or branch)")
@fleet_and_format("the fleet folder inside a git repository")
def history_command(address: str | None, since: str | None, fleet_path: str, fmt: str) -> None:
    """Per-resource manifest history from git: commit, author, date, message and the field-level diff.

    ADDRESS is a resource address (aws/aws-eu/Thing/DA1275B0), a glob (aws/*/Policy/*) or a bare name;
    without it every resource is shown. Renamed files and resources moved between files are followed.
    """
    events = history(Path(fleet_path), address, since)
    console.echo(render_history(events, fmt), nl=False, style=fmt == "text")


@click.command("journal")
@click.argument("address", required=False)
@click.option(
    "--journal",
    "journals",
    multiple=True,
    type=click.Path(),
    help="journal file(s) (default: $FLEETCTL_JOURNAL or .fleetctl/journal.jsonl); repeatable",
)
@click.option("--request-id", help="only the change whose cloud calls include this request id")
@click.option("--plan", "plan_id", help="only this plan id")
@fleet_and_format("the fleet folder (its git repository resolves commits to pull requests)")
def journal_command(
    address: str | None,
    journals: tuple[str, ...],
    request_id: str | None,
    plan_id: str | None,
    fleet_path: str,
    fmt: str,
) -> None:
    """What apply did: per change the plan, commit, pull request, outcome, time and cloud request ids.

    From a cloud change back to its review: `fleetctl journal --request-id ID` names the plan, the commit
    and the pull request that carried it out.
    """
    paths = [Path(j) for j in journals] or [Path(os.environ.get("FLEETCTL_JOURNAL", ".fleetctl/journal.jsonl"))]
    fleet = Path(fleet_path)
    git = None
    if fleet.exists() and Git.run_in(fleet if fleet.is_dir() else fleet.parent, "rev-parse", check=False) is not None:
        git = Git(fleet)
    records = journal_report(paths, address, request_id, plan_id, git)
    console.echo(render_journal(records, fmt), nl=False, style=fmt == "text")


commands = [history_command, journal_command]
