"""fleetctl's command line: parses options, calls engine.run, renders results, maps outcomes to exit codes.

Exit codes (DESIGN §1.2): 0 success / no changes; 2 changes (plan --detailed-exitcode), drift, lint
findings; 1 any error. A user never sees a traceback for bad input; an unexpected internal error prints one
line and the hint to set FLEETCTL_DEBUG=1.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from engine import run
from engine.diagnostics import FleetctlError, Severity
from engine.plan.model import Plan, PlanFileError, load_plan
from engine.plan.render import RENDERERS, summary_line, text as text_view

FORMATS = click.Choice(sorted(RENDERERS))
EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def _ctx(journal: str | None) -> run.Context:
    return run.Context(journal_path=Path(journal or os.environ.get("FLEETCTL_JOURNAL", ".fleetctl/journal.jsonl")),
                       workers=int(os.environ.get("FLEETCTL_WORKERS") or 8))   # changes applied concurrently


def _emit_diagnostics(diags) -> None:
    for d in diags:
        click.echo(d.render(), err=True)


def _write(path: str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")


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
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
            if os.environ.get("FLEETCTL_DEBUG"):
                raise
            from engine.errors import ProviderError
            from engine.sandbox.manager import SandboxError
            if isinstance(exc, (ProviderError, SandboxError)):
                click.echo(f"error: {exc}", err=True)
            else:
                click.echo(f"error: internal error ({type(exc).__name__}): {exc}\n"
                           "This is a bug in fleetctl, not a mistake in your input: please report it at "
                           "https://github.com/fleetctl/fleetctl/issues with the command you ran and the "
                           "traceback that FLEETCTL_DEBUG=1 prints (check it for secrets before you post it).",
                           err=True)
            ctx.exit(EXIT_ERROR)


@click.group(cls=FleetctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fleetctl")
def cli() -> None:
    """Declarative GitOps configuration for IoT fleets: AWS IoT Core, Azure IoT Hub/DPS, device registers."""


@cli.command()
@click.argument("path", default="fleet", type=click.Path())
def validate(path: str) -> None:
    """Load and check the manifests: schema and references, every error at once."""
    from engine.manifest.fleet import load_fleet
    fleet = load_fleet(path)
    _emit_diagnostics(fleet.diagnostics.sorted())
    errors = len(fleet.diagnostics.errors)
    if errors:
        click.echo(f"{errors} error(s) in {path}; nothing was changed.", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"{path}: {len(fleet.manifests)} manifest(s), {len(fleet.desired)} resource(s) valid.")


def _plan_options(f):
    f = click.option("--target", "targets", multiple=True, help="only this Target (repeatable)")(f)
    f = click.option("--prune", is_flag=True, help="delete managed resources no manifest declares")(f)
    f = click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)(f)
    f = click.option("--journal", type=click.Path(), help="journal file (default .fleetctl/journal.jsonl)")(f)
    f = click.option("--dumps", type=click.Path(), help="folder of device dumps (one file per device)")(f)
    return f


def _make_plan(path: str, targets, prune: bool, journal: str | None, dumps: str | None,
               extra_env: dict[str, str] | None = None, changed_since: str | None = None
               ) -> tuple[run.PlanResult, run.Context]:
    ctx = _ctx(journal)
    if dumps:
        ctx.env = {**ctx.env, "FLEETCTL_DUMPS": str(Path(dumps).resolve())}
    if extra_env:
        ctx.env = {**ctx.env, **extra_env}
    return run.plan(Path(path), ctx, targets=set(targets) or None, prune=prune, changed_since=changed_since), ctx


def _render(plan_obj: Plan, fmt: str, summary: bool = False) -> str:
    return text_view(plan_obj, summary=True) if summary and fmt == "text" else RENDERERS[fmt](plan_obj)


@cli.command()
@click.argument("path", default="fleet", type=click.Path())
@_plan_options
@click.option("--out", type=click.Path(), help="write the plan file (JSON) for `fleetctl apply PLANFILE`")
@click.option("--detailed-exitcode", is_flag=True, help="exit 2 when the plan has changes")
@click.option("--summary", is_flag=True, help="changes per kind and action instead of one line per change "
              "(drill into one with `fleetctl show PLANFILE --address ADDR`)")
@click.option("--changed-since", metavar="REV", help="plan only resources whose manifests changed since this git "
              "revision, and their dependants (pull-request plans); drift still checks everything")
def plan(path: str, targets, prune: bool, fmt: str, journal: str | None, dumps: str | None, out: str | None,
         detailed_exitcode: bool, summary: bool, changed_since: str | None) -> None:
    """Read the actual state, diff it against the manifests and print the ordered plan."""
    result, _ = _make_plan(path, targets, prune, journal, dumps, changed_since=changed_since)
    if out:
        _write(out, result.plan.dumps())
    click.echo(_render(result.plan, fmt, summary), nl=False)
    if any(d.severity is Severity.ERROR for d in result.plan.diagnostics):
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CHANGES if detailed_exitcode and result.plan.has_changes else EXIT_OK)


@cli.command()
@click.argument("path", default="fleet", type=click.Path())
@_plan_options
def drift(path: str, targets, prune: bool, fmt: str, journal: str | None, dumps: str | None) -> None:
    """Report where the actual state no longer matches the manifests (exit 2 on drift)."""
    result, _ = _make_plan(path, targets, prune, journal, dumps)
    from engine.plan.render import drift_report
    _emit_diagnostics(result.plan.diagnostics)       # e.g. an optional target that was not checked
    click.echo(drift_report(result.plan, fmt), nl=False)
    sys.exit(EXIT_CHANGES if result.plan.has_changes else EXIT_OK)


@cli.command()
@click.argument("planfile", type=click.Path())
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--summary", is_flag=True, help="changes per kind and action instead of one line per change")
@click.option("--address", "addresses", multiple=True, metavar="ADDR",
              help="only the changes at this address or glob (repeatable), with every detail")
def show(planfile: str, fmt: str, summary: bool, addresses: tuple[str, ...]) -> None:
    """Render a saved plan file (or drill into some of its changes with --address)."""
    plan_obj = load_plan(planfile)
    if addresses:
        from engine.plan import drilldown
        chosen = drilldown.select(plan_obj, addresses)
        if not chosen:
            click.echo(f"error: no change of plan {plan_obj.plan_id} matches {', '.join(addresses)}", err=True)
            sys.exit(EXIT_ERROR)
        click.echo(drilldown.render(plan_obj, list(addresses), chosen, fmt), nl=False)
        return
    click.echo(_render(plan_obj, fmt, summary), nl=False)


def _report(report: run.ApplyReport, shown: int = 3) -> None:
    same: dict[str, list[str]] = {}       # one error for a whole batch (e.g. a bulk registration task) is said once
    for address, message in report.failed:
        same.setdefault(message, []).append(address)
    for message, addresses in same.items():
        for address in addresses[:shown]:
            click.echo(f"error: {address}: {message}", err=True)
        if len(addresses) > shown:
            click.echo(f"error: {len(addresses) - shown} more change(s) failed with the same error "
                       f"({addresses[shown]} … {addresses[-1]})", err=True)
    for address in report.skipped:
        click.echo(f"skipped: {address} (a change it depends on failed)", err=True)
    click.echo(f"Apply {report.plan_id}: {len(report.applied)} applied, {len(report.failed)} failed, "
               f"{len(report.skipped)} skipped in {report.seconds:.1f}s.")


@cli.command()
@click.argument("path_or_plan", default="fleet", type=click.Path())
@click.option("--auto-approve", is_flag=True, help="apply without asking (PATH mode)")
@click.option("--journal", type=click.Path())
@click.option("--fleet", "fleet_path", type=click.Path(), help="fleet folder (PLANFILE mode; default: fleet)")
@click.option("--target", "targets", multiple=True)
@click.option("--prune", is_flag=True)
@click.option("--dumps", type=click.Path())
@click.option("--artifacts", type=click.Path(), default="out", show_default=True,
              help="folder for the device artifacts (SpringCoreConfig files, AT scripts, NVS CSVs)")
def apply(path_or_plan: str, auto_approve: bool, journal: str | None, fleet_path: str | None, targets, prune: bool,
          dumps: str | None, artifacts: str) -> None:
    """Apply a saved PLANFILE exactly (refusing a stale one), or plan PATH and apply it."""
    device_env = {"FLEETCTL_ARTIFACTS": str(Path(artifacts).resolve())}
    ctx = _ctx(journal)
    ctx.env = {**ctx.env, **device_env}
    target = Path(path_or_plan)
    if target.is_file() and target.suffix == ".json":
        plan_obj = load_plan(str(target))
        fleet_root = Path(fleet_path or "fleet")
        specs = _target_specs(plan_obj, fleet_root, ctx)
    else:
        result, ctx = _make_plan(path_or_plan, targets, prune, journal, dumps, device_env)
        plan_obj, fleet_root = result.plan, result.fleet.root
        specs = {n: m.spec for n, m in result.fleet.targets().items()}
        click.echo(RENDERERS["text"](plan_obj), nl=False)
        if any(d.severity is Severity.ERROR for d in plan_obj.diagnostics):
            sys.exit(EXIT_ERROR)
        if not plan_obj.has_changes:
            sys.exit(EXIT_OK)
        if not auto_approve:
            if not sys.stdin.isatty():
                click.echo("error: refusing to apply without --auto-approve (no terminal to ask)", err=True)
                sys.exit(EXIT_ERROR)
            if not click.confirm("Apply these changes?"):
                click.echo("Apply cancelled; nothing was changed.")
                sys.exit(EXIT_ERROR)
    if not plan_obj.has_changes:
        click.echo(summary_line(plan_obj))
        sys.exit(EXIT_OK)
    report = run.apply(plan_obj, ctx, fleet_root, specs, check=True)
    _report(report)
    if any(a.startswith("device/") for a in report.applied):
        click.echo(f"Device artifacts are in {artifacts}/: push them to the devices, read the devices back into "
                   "the dumps folder, then plan again.")
    sys.exit(EXIT_OK if report.ok else EXIT_ERROR)


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
@click.option("--quota-faithful", is_flag=True, default=None,
              help="AWS default quotas, page sizes and latency in front of moto; Azure emulator at S1 rates "
                   "(also: FLEETCTL_SANDBOX_QUOTAS=1)")
def sandbox_up(quota_faithful: bool | None) -> None:
    """Start the emulators in the background and print export lines (also in .fleetctl/sandbox.env)."""
    from engine.sandbox import manager
    click.echo(manager.up(quota_faithful=quota_faithful or None), nl=False)


@sandbox.command("env")
def sandbox_env() -> None:
    """Print the export lines of the running sandbox again."""
    from engine.sandbox import manager
    click.echo(manager.env(), nl=False)


@sandbox.command("down")
def sandbox_down() -> None:
    """Stop the emulators."""
    from engine.sandbox import manager
    stopped = manager.down()
    click.echo("stopped: " + (", ".join(stopped) or "nothing was running"))


# Commands that live in their own modules (each exports a click command or group named `command`).
COMMAND_MODULES = ("engine.audit", "engine.lint.cli", "engine.importer.cli")


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


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="fleetctl")


if __name__ == "__main__":
    main()
