"""fleetctl's command line: parses options, calls engine.run, renders results, maps outcomes to exit codes.

Exit codes (DESIGN §1.2): 0 success / no changes; 2 changes (plan --detailed-exitcode), drift, lint
findings; 1 any error. A user never sees a traceback for bad input; an unexpected internal error prints one
line and the hint to set FLEETCTL_DEBUG=1. Each command's help lists its exit codes and the environment it reads
(engine/clihelp.py). Everything printed for people goes through engine/console.py (colour on a terminal, none
when piped, NO_COLOR, --no-color); progress goes to stderr (engine/progress.py).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import sys
from pathlib import Path

import click

from engine import console, fsutil, progress, run
from engine.clihelp import apply_epilogs
from engine.console import COLOR_MODES, META_KEY
from engine.diagnostics import FleetctlError, error
from engine.plan.model import Plan, PlanFileError, load_plan
from engine.plan.render import RENDERERS, summary_line
from engine.plan.render import text as text_view

FORMATS = click.Choice(sorted(RENDERERS))
EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def _ctx(journal: str | None) -> run.Context:
    return run.Context(
        journal_path=Path(journal or os.environ.get("FLEETCTL_JOURNAL", ".fleetctl/journal.jsonl")),
        workers=int(os.environ.get("FLEETCTL_WORKERS") or 8),  # changes applied concurrently
        progress=_progress_sink(),
    )


def _progress_sink() -> progress.ProgressSink:
    """Bars on a terminal, lines in a CI log, always on stderr (engine/progress.py)."""
    try:
        sink = progress.sink_for(sys.stderr, os.environ, color=console.current().color(err=True))
    except ValueError as exc:
        raise FleetctlError(error(str(exc))) from None
    click_ctx = click.get_current_context(silent=True)
    if click_ctx is not None:  # a read that raised left its task open: the bars stop with the command
        click_ctx.call_on_close(sink.close)
    return sink


def _emit_diagnostics(diags) -> None:
    for d in diags:
        console.echo(d.render(), err=True)


def _say(text: str, *, err: bool = False, nl: bool = True) -> None:
    """A line for people (styled where colour is on)."""
    console.echo(text, err=err, nl=nl)


def _show(text: str, fmt: str) -> None:
    """A rendered view on stdout: the text view styled where colour is on; json and markdown never."""
    console.echo(text, nl=False, style=fmt == "text")


def _write(path: str, text: str) -> None:
    """A plan file: 0600 whatever the umask, replaced atomically (engine/fsutil.py)."""
    fsutil.write_atomic(path, text)


class FleetctlGroup(click.Group):
    """Maps fleetctl's errors to exit code 1 with diagnostics on stderr, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except FleetctlError as exc:
            _emit_diagnostics(exc.diagnostics)
            ctx.exit(EXIT_ERROR)
        except PlanFileError as exc:
            _say(f"error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
            if os.environ.get("FLEETCTL_DEBUG"):
                raise
            from engine.errors import ProviderError
            from engine.sandbox.manager import SandboxError

            if isinstance(exc, (ProviderError, SandboxError)):
                _say(f"error: {exc}", err=True)
            else:
                _say(
                    f"error: internal error ({type(exc).__name__}): {exc}\n"
                    "This is a bug in fleetctl, not a mistake in your input: please report it at "
                    "https://github.com/fleetctl/fleetctl/issues with the command you ran and the "
                    "traceback that FLEETCTL_DEBUG=1 prints (check it for secrets before you post it).",
                    err=True,
                )
            ctx.exit(EXIT_ERROR)


@click.group(cls=FleetctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fleetctl")
@click.option(
    "--color",
    "color",
    type=click.Choice(COLOR_MODES),
    default=None,
    metavar="[auto|always|never]",
    help="colour the output for people: auto (on a terminal, unless NO_COLOR is set; FORCE_COLOR forces "
    "it), always, never  [default: auto]",
)
@click.option("--no-color", is_flag=True, help="no colour (same as --color=never)")
@click.pass_context
def cli(ctx: click.Context, color: str | None, no_color: bool) -> None:
    """Declarative GitOps configuration for IoT fleets: AWS IoT Core, Azure IoT Hub/DPS, device registers."""
    if no_color and color not in (None, "never"):
        raise click.UsageError(f"--no-color contradicts --color={color}")
    ctx.meta[META_KEY] = "never" if no_color else (color or "auto")


@cli.command()
@click.argument("path", default="fleet", type=click.Path())
@click.option(
    "--schema-only",
    is_flag=True,
    help="check each document against the published JSON Schemas (schemas/) only, as an editor does: "
    "no references resolved, no files read",
)
def validate(path: str, schema_only: bool) -> None:
    """Load and check the manifests: schema and references, every error at once."""
    if schema_only:
        _validate_schema_only(path)
        return
    from engine.manifest.fleet import load_fleet

    fleet = load_fleet(path)
    _emit_diagnostics(fleet.diagnostics.sorted())
    errors = len(fleet.diagnostics.errors)
    if errors:
        _say(f"{errors} error(s) in {path}; nothing was changed.", err=True)
        sys.exit(EXIT_ERROR)
    _say(f"{path}: {len(fleet.manifests)} manifest(s), {len(fleet.desired)} resource(s) valid.")


def _validate_schema_only(path: str) -> None:
    from engine import schema_gen
    from engine.diagnostics import Diagnostics
    from engine.manifest import schemacheck

    count, found = schemacheck.check_path(Path(path), schema_gen.published())
    diags = Diagnostics(found)
    _emit_diagnostics(diags.sorted())
    errors = len(diags.errors)
    if errors:
        _say(f"{errors} error(s) in {path} against the published schemas; nothing was changed.", err=True)
        sys.exit(EXIT_ERROR)
    _say(f"{path}: {count} document(s) valid against the published schemas.")


def _plan_options(f):
    f = click.option("--target", "targets", multiple=True, help="only this Target (repeatable)")(f)
    f = click.option("--prune", is_flag=True, help="delete managed resources no manifest declares")(f)
    f = click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)(f)
    f = click.option("--journal", type=click.Path(), help="journal file (default .fleetctl/journal.jsonl)")(f)
    f = click.option("--dumps", type=click.Path(), help="folder of device dumps (one file per device)")(f)
    return f


def _snapshot_options(f):
    f = click.option(
        "--since-snapshot",
        "since_snapshot",
        type=click.Path(),
        metavar="FILE",
        help="start from this snapshot: AWS reads only the certificate links CloudTrail events touched "
        "since it (a snapshot that cannot be trusted is refused, and the read is full)",
    )(f)
    f = click.option(
        "--snapshot-out",
        "snapshot_out",
        type=click.Path(),
        metavar="FILE",
        help="save the actual state read as a snapshot (compressed, 0600) for the next --since-snapshot",
    )(f)
    f = click.option("--full", is_flag=True, help="read everything in full, even with --since-snapshot")(f)
    f = click.option(
        "--max-snapshot-age",
        "max_age",
        default="7d",
        show_default=True,
        metavar="DURATION",
        help="a full read when the last one is older than this (e.g. 7d, 12h)",
    )(f)
    f = click.option(
        "--trail-overlap",
        "overlap",
        default="15m",
        show_default=True,
        metavar="DURATION",
        help="how far before the snapshot's read CloudTrail events are read again (delivery delay)",
    )(f)
    return f


def _seconds(text: str, option: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit.isdigit():
        value, unit = text.strip(), "s"
    try:
        seconds = float(value) * units[unit]
    except (KeyError, ValueError):
        raise click.BadParameter(f"{text!r} is not a duration such as 90s, 15m, 12h or 7d", param_hint=option) from None
    if seconds < 0:
        raise click.BadParameter(f"{text!r} is negative", param_hint=option)
    return seconds


def _snapshot_use(since: str | None, out: str | None, full: bool, max_age: str, overlap: str) -> run.SnapshotUse | None:
    """What the snapshot options ask for; a snapshot that cannot be used is refused here with its reason."""
    if not since and not out:
        return None
    from datetime import timedelta

    from engine import snapshot as snapshots
    from engine.providers.aws.trail import Settings

    settings = Settings(
        full=full,
        max_age=timedelta(seconds=_seconds(max_age, "--max-snapshot-age")),
        overlap=timedelta(seconds=_seconds(overlap, "--trail-overlap")),
        lookup=os.environ.get("FLEETCTL_TRAIL_LOOKUP") or "write-only",
    )
    if not since:
        return run.SnapshotUse(None, "no --since-snapshot was given", settings)
    try:
        return run.SnapshotUse(snapshots.load(since), None, settings)
    except snapshots.SnapshotRefused as exc:
        reason = f"the snapshot {since} was refused: {exc}"
        _say(f"warning: {reason}; reading everything in full", err=True)
        return run.SnapshotUse(None, reason, settings)


def _keep_snapshot(result: run.PlanResult, out: str | None) -> None:
    if out and result.snapshot is not None:
        from engine import snapshot as snapshots

        snapshots.write(out, result.snapshot)


def _make_plan(
    path: str,
    targets,
    prune: bool,
    journal: str | None,
    dumps: str | None,
    extra_env: dict[str, str] | None = None,
    changed_since: str | None = None,
    snapshot: run.SnapshotUse | None = None,
) -> tuple[run.PlanResult, run.Context]:
    ctx = _ctx(journal)
    if dumps:
        ctx.env = {**ctx.env, "FLEETCTL_DUMPS": str(Path(dumps).resolve())}
    if extra_env:
        ctx.env = {**ctx.env, **extra_env}
    return run.plan(
        Path(path), ctx, targets=set(targets) or None, prune=prune, changed_since=changed_since, snapshot=snapshot
    ), ctx


def _render(plan_obj: Plan, fmt: str, summary: bool = False) -> str:
    return text_view(plan_obj, summary=True) if summary and fmt == "text" else RENDERERS[fmt](plan_obj)


@cli.command()
@click.argument("path", default="fleet", type=click.Path())
@_plan_options
@click.option("--out", type=click.Path(), help="write the plan file (JSON) for `fleetctl apply PLANFILE`")
@click.option("--detailed-exitcode", is_flag=True, help="exit 2 when the plan has changes")
@click.option(
    "--summary",
    is_flag=True,
    help="changes per kind and action instead of one line per change "
    "(drill into one with `fleetctl show PLANFILE --address ADDR`)",
)
@click.option(
    "--changed-since",
    metavar="REV",
    help="plan only resources whose manifests changed since this git "
    "revision, and their dependants (pull-request plans); drift still checks everything",
)
@_snapshot_options
def plan(
    path: str,
    targets,
    prune: bool,
    fmt: str,
    journal: str | None,
    dumps: str | None,
    out: str | None,
    detailed_exitcode: bool,
    summary: bool,
    changed_since: str | None,
    since_snapshot: str | None,
    snapshot_out: str | None,
    full: bool,
    max_age: str,
    overlap: str,
) -> None:
    """Read the actual state, diff it against the manifests and print the ordered plan."""
    try:
        result, _ = _make_plan(
            path,
            targets,
            prune,
            journal,
            dumps,
            changed_since=changed_since,
            snapshot=_snapshot_use(since_snapshot, snapshot_out, full, max_age, overlap),
        )
    except FleetctlError:
        if out:  # no plan at all: an older plan file at that path must not be applied instead
            fsutil.remove(out)
        raise
    if out:  # an errored plan is written marked "errored" (apply refuses it), replacing any older file
        _write(out, result.plan.dumps())
    _keep_snapshot(result, snapshot_out)
    _show(_render(result.plan, fmt, summary), fmt)
    if result.plan.errored:
        if out:
            _say(
                f"error: plan {result.plan.plan_id} ended in error; {out} is marked failed and apply refuses it",
                err=True,
            )
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CHANGES if detailed_exitcode and result.plan.has_changes else EXIT_OK)


@cli.command()
@click.argument("path", default="fleet", type=click.Path())
@_plan_options
@_snapshot_options
def drift(
    path: str,
    targets,
    prune: bool,
    fmt: str,
    journal: str | None,
    dumps: str | None,
    since_snapshot: str | None,
    snapshot_out: str | None,
    full: bool,
    max_age: str,
    overlap: str,
) -> None:
    """Report where the actual state no longer matches the manifests (exit 2 on drift, 1 when it could not be
    checked in full). A difference no plan can repair (a certificate revoked out of band) is drift too.

    With --since-snapshot, AWS targets re-read only the certificate links that CloudTrail events touched since
    the snapshot (every list read still runs in full); the report says what the read trusted."""
    result, _ = _make_plan(
        path,
        targets,
        prune,
        journal,
        dumps,
        snapshot=_snapshot_use(since_snapshot, snapshot_out, full, max_age, overlap),
    )
    _keep_snapshot(result, snapshot_out)
    from engine.plan.driftview import drift_report

    _emit_diagnostics(result.plan.diagnostics)  # e.g. an optional target that was not checked
    _show(drift_report(result.plan, fmt), fmt)
    if result.plan.errors:  # reading failed, or a part could not be compared: never "in sync"
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CHANGES if result.plan.has_changes or result.plan.blocked else EXIT_OK)


@cli.command()
@click.argument("planfiles", nargs=-1, type=click.Path(), metavar="PLANFILE...")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--summary", is_flag=True, help="changes per kind and action instead of one line per change")
@click.option(
    "--address",
    "addresses",
    multiple=True,
    metavar="ADDR",
    help="only the changes at this address or glob (repeatable), with every detail",
)
@click.option(
    "--merge",
    is_flag=True,
    help="one view of several per-Target plan files (a CI matrix's PR comment); "
    "for reading only, never applicable as one plan",
)
@click.option(
    "--failed",
    "failed",
    multiple=True,
    metavar="TARGET=FILE",
    help="with --merge: a Target whose plan job failed without a plan file, and the file holding its error",
)
def show(
    planfiles: tuple[str, ...],
    fmt: str,
    summary: bool,
    addresses: tuple[str, ...],
    merge: bool,
    failed: tuple[str, ...],
) -> None:
    """Render a saved plan file (or drill into some of its changes with --address), or merge per-Target plan
    files into one read-only view (--merge)."""
    if merge:
        _show_merged(planfiles, failed, fmt)
        return
    if len(planfiles) != 1 or failed:
        raise click.UsageError("show takes one PLANFILE; several plan files (or --failed) need --merge")
    planfile = planfiles[0]
    plan_obj = load_plan(planfile)
    if plan_obj.errored:
        _say(f"note: plan {plan_obj.plan_id} ended in error; apply refuses it", err=True)
    if addresses:
        from engine.plan import drilldown

        chosen = drilldown.select(plan_obj, addresses)
        blocked = [b for b in plan_obj.blocked if any(fnmatch.fnmatchcase(str(b.address), p) for p in addresses)]
        if not chosen and not blocked:
            _say(f"error: no change of plan {plan_obj.plan_id} matches {', '.join(addresses)}", err=True)
            sys.exit(EXIT_ERROR)
        if chosen:
            _show(drilldown.render(plan_obj, list(addresses), chosen, fmt), fmt)
        if blocked:  # differences the plan could not carry out, with why and what to do
            from engine.plan.render import blocked_lines

            only = dataclasses.replace(plan_obj, blocked=tuple(blocked))
            _show(
                json.dumps([b.to_json() for b in blocked], indent=2, ensure_ascii=False) + "\n"
                if fmt == "json"
                else "\n".join(blocked_lines(only, fmt)) + "\n",
                fmt,
            )
        return
    _show(_render(plan_obj, fmt, summary), fmt)


def _show_merged(planfiles: tuple[str, ...], failed: tuple[str, ...], fmt: str) -> None:
    from engine.plan import merged

    broken: dict[str, str] = {}
    for item in failed:
        name, sep, path = item.partition("=")
        if not sep or not name:
            raise click.UsageError(f"--failed takes TARGET=FILE, not {item!r}")
        try:
            broken[name] = Path(path).read_text(encoding="utf-8", errors="replace") if path else ""
        except OSError as exc:
            broken[name] = f"(the error file {path} is unreadable: {exc.strerror})"
    plans = [load_plan(p) for p in planfiles if p]
    commits = sorted({p.git_commit for p in plans if p.git_commit})
    _show(merged.render(merged.entries(plans, broken), fmt, commits[0] if len(commits) == 1 else ""), fmt)


@cli.command()
@click.argument("path", default="fleet", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help='{"include": [...], "count": N}: a GitHub Actions matrix')
@click.option("--changed-since", metavar="REV", help="only the Targets touched by changes since this git revision")
def targets(path: str, as_json: bool, changed_since: str | None) -> None:
    """List the fleet's Targets: provider, where each acts (region/account/role or hub), optional, and the
    concurrency lock a CI matrix uses; --changed-since lists only those a pull request touches."""
    from engine import targets as listing

    ctx = _ctx(None)
    fleet = run.load(Path(path), ctx)
    entries = listing.listing(fleet, ctx.env, changed_since)
    _say((listing.as_json if as_json else listing.as_text)(entries, changed_since), nl=False)


def _report(report: run.ApplyReport) -> None:
    same: dict[str, list[str]] = {}  # one error for a whole batch (e.g. a bulk registration task) is said once
    for address, message in report.failed:
        same.setdefault(message, []).append(address)
    for message, addresses in same.items():
        if len(addresses) == 1:
            _say(f"error: {addresses[0]}: {message}", err=True)
            continue
        _say(f"error: {len(addresses)} change(s) failed with the same error: {message}", err=True)
        for address in addresses:  # every failed address, one per line: none is left to the journal
            _say(f"error:   {address}", err=True)
    for address in report.skipped:
        _say(f"skipped: {address} (a change it depends on failed)", err=True)
    _say(
        f"Apply {report.plan_id}: {len(report.applied)} applied, {len(report.failed)} failed, "
        f"{len(report.skipped)} skipped in {report.seconds:.1f}s."
    )


@cli.command()
@click.argument("path_or_plan", default="fleet", type=click.Path())
@click.option("--auto-approve", is_flag=True, help="apply without asking (PATH mode)")
@click.option("--journal", type=click.Path())
@click.option("--fleet", "fleet_path", type=click.Path(), help="fleet folder (PLANFILE mode; default: fleet)")
@click.option("--target", "targets", multiple=True)
@click.option("--prune", is_flag=True)
@click.option("--dumps", type=click.Path())
@click.option(
    "--artifacts",
    type=click.Path(),
    default="out",
    show_default=True,
    help="folder for the device artifacts (SpringCoreConfig files, AT scripts, NVS CSVs)",
)
def apply(
    path_or_plan: str,
    auto_approve: bool,
    journal: str | None,
    fleet_path: str | None,
    targets,
    prune: bool,
    dumps: str | None,
    artifacts: str,
) -> None:
    """Apply a saved PLANFILE exactly (refusing a stale one), or plan PATH and apply it."""
    device_env = {"FLEETCTL_ARTIFACTS": str(Path(artifacts).resolve())}
    ctx = _ctx(journal)
    ctx.env = {**ctx.env, **device_env}
    target = Path(path_or_plan)
    saved = target.is_file() and target.suffix == ".json"
    if saved:
        plan_obj = load_plan(str(target))
        run.refuse_errored(plan_obj)  # a plan file marked failed is never applied (exit 1)
        fleet_root = Path(fleet_path or "fleet")
        specs = _target_specs(plan_obj, fleet_root, ctx)
    else:
        result, ctx = _make_plan(path_or_plan, targets, prune, journal, dumps, device_env)
        plan_obj, fleet_root = result.plan, result.fleet.root
        specs = {n: m.spec for n, m in result.fleet.targets().items()}
        _show(RENDERERS["text"](plan_obj), "text")
        if plan_obj.errored:
            sys.exit(EXIT_ERROR)
        if not plan_obj.has_changes:
            _say_reconciled(run.reconcile(plan_obj, ctx))
            sys.exit(EXIT_OK)
        if not auto_approve:
            if not sys.stdin.isatty():
                _say("error: refusing to apply without --auto-approve (no terminal to ask)", err=True)
                sys.exit(EXIT_ERROR)
            if not click.confirm("Apply these changes?"):
                _say("Apply cancelled; nothing was changed.")
                sys.exit(EXIT_ERROR)
    if not plan_obj.has_changes:
        _say(summary_line(plan_obj))
        _say_reconciled(run.reconcile(plan_obj, ctx))
        sys.exit(EXIT_OK)
    report = run.apply(plan_obj, ctx, fleet_root, specs, check=True, journal_check=saved)
    if report.already_applied:  # nothing was read or changed
        _say(report.already_applied[0].upper() + report.already_applied[1:] + ".")
        sys.exit(EXIT_OK)
    _report(report)
    _say_reconciled(report.reconciled)
    if any(a.startswith("device/") for a in report.applied):
        _say(
            f"Device artifacts are in {artifacts}/: push them to the devices, read the devices back into "
            "the dumps folder, then plan again."
        )
    for path in report.secret_files:
        _say(f"{_shown_path(path)} holds secrets (mode 0600): push it to the device and delete it.")
    sys.exit(EXIT_OK if report.ok else EXIT_ERROR)


def _say_reconciled(count: int) -> None:
    if count:
        _say(f"Recorded {count} change(s) of an interrupted apply as converged; the warning about it stops.")


def _shown_path(path: str) -> str:
    """A path relative to the working folder when it is under it (what a person types next), else absolute."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    except ValueError:
        return path


def _target_specs(plan_obj: Plan, fleet_root: Path, ctx: run.Context) -> dict:
    """The Targets a saved plan was made for: recorded in the plan file; older plan files load the fleet."""
    from engine.manifest.core_kinds import TargetSpec

    recorded = plan_obj.options.get("targetSpecs")
    if recorded is not None:
        return {name: TargetSpec.model_validate(spec) for name, spec in recorded.items()}
    from engine.manifest.fleet import load_fleet

    fleet = load_fleet(fleet_root, ctx.env, resolve_secrets=False)
    return {n: m.spec for n, m in fleet.targets().items()}


@cli.group()
def sandbox() -> None:
    """Local AWS (moto) and Azure emulators on loopback, for the demo and the tests."""


@sandbox.command("up")
@click.option(
    "--quota-faithful",
    is_flag=True,
    default=None,
    help="AWS default quotas, page sizes and latency in front of moto; Azure emulator at S1 rates "
    "(also: FLEETCTL_SANDBOX_QUOTAS=1)",
)
def sandbox_up(quota_faithful: bool | None) -> None:
    """Start the emulators in the background and print export lines (also in .fleetctl/sandbox.env)."""
    from engine.sandbox import manager

    console.echo(manager.up(quota_faithful=quota_faithful or None), nl=False, style=False)  # export lines: eval'd


@sandbox.command("env")
def sandbox_env() -> None:
    """Print the export lines of the running sandbox again."""
    from engine.sandbox import manager

    console.echo(manager.env(), nl=False, style=False)


@sandbox.command("down")
def sandbox_down() -> None:
    """Stop the emulators."""
    from engine.sandbox import manager

    stopped = manager.down()
    _say("stopped: " + (", ".join(stopped) or "nothing was running"))


# Commands that live in their own modules (each exports a click command or group named `command`).
COMMAND_MODULES = ("engine.audit", "engine.lint.cli", "engine.importer.cli", "engine.authz.cli")


def _register_plugins() -> None:
    import importlib

    for module in COMMAND_MODULES:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        for cmd in getattr(mod, "commands", [getattr(mod, "command", None)]):
            if cmd is not None:
                cli.add_command(cmd)


_register_plugins()
for _command in cli.commands.values():
    console.add_color_options(_command)  # `fleetctl plan --no-color` works as `fleetctl --no-color plan`
apply_epilogs(cli)  # every command's exit codes and environment, from engine/clihelp.py


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="fleetctl")


if __name__ == "__main__":
    main()
