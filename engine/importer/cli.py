"""`fleetctl import`: the command line of engine/importer (progress on stderr, the summary on stdout)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import click

from engine.importer.model import Filter, ImportRequest


def _echo_err(text: str) -> None:
    click.echo(text, err=True)


@click.command("import")
@click.option("--target", help="the Target to read (declared in the fleet)")
@click.option(
    "--dumps",
    "dumps",
    type=click.Path(file_okay=False),
    help="instead of a Target: a folder of device dumps (one file per device, named by its identity); "
    "writes one DeviceConfig per model in OUT/devices/",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="a new or empty folder for the manifests (inside the fleet folder: the import skips what the fleet declares)",
)
@click.option(
    "--fleet",
    "fleet",
    default="fleet",
    show_default=True,
    type=click.Path(),
    help="the fleet folder that declares the Target",
)
@click.option(
    "--kinds",
    multiple=True,
    help="kinds to import, comma-separated or repeated (default: all); what they reference is imported too",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=GLOB",
    help="import only matching resources (repeatable, all must match): name=..., thingType=..., "
    "group=..., attributes.KEY=...",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="annotate the manifests so the next plan adds fleetctl's ownership marker, as a change to review",
)
@click.option("--resume", is_flag=True, help="continue an interrupted import into the same --out")
@click.option(
    "--rate",
    "rates",
    multiple=True,
    metavar="API=N",
    help="requests per second for an API whose quota was raised, e.g. ListThings=20 (repeatable; "
    "added to FLEETCTL_QUOTAS)",
)
@click.option(
    "--no-rate-limit",
    is_flag=True,
    help="do not pace API calls (FLEETCTL_RATE_LIMIT=off; a local sandbox is not paced anyway)",
)
@click.option("--page-size", type=click.IntRange(1, 250), default=250, show_default=True, hidden=True)
def command(
    target: str | None,
    dumps: str | None,
    out: str,
    fleet: str,
    kinds: tuple[str, ...],
    filters: tuple[str, ...],
    adopt: bool,
    resume: bool,
    rates: tuple[str, ...],
    no_rate_limit: bool,
    page_size: int,
) -> None:
    """Write manifests for what already runs in a Target, so fleetctl can take it over as it is.

    The account is only read, each API at most at its default quota (research/quotas.md; raise one with
    --rate). Certificates are written as public PEMs, never private keys; secrets become references listed
    in IMPORT-SECRETS.md. Right after an import, `fleetctl plan` shows no changes (with --adopt: one update
    per resource that adds the ownership marker).

    Devices: `fleetctl import --dumps DIR --out OUT [--fleet PATH]` (no --target) reads every dump in DIR,
    recognises its built-in model from its firmware and identity, and writes OUT/devices/<model>.yaml: one
    DeviceConfig per model with, per device, the registers whose value differs from the model default.
    Sensitive registers become {env: FLEETCTL_<MODEL>_<DEVICE>_<REGISTER>} references (IMPORT-SECRETS.md);
    unreadable registers and slots (certificates, keys) are not imported (IMPORT.md). Devices the fleet at
    --fleet already configures are skipped. Then `fleetctl plan OUT --dumps DIR` shows no changes.
    """
    from engine import run
    from engine.importer.core import inside, run_import

    if dumps is not None:
        if target is not None or kinds or filters or adopt or resume or rates:
            raise click.UsageError(
                "--dumps imports device dumps: it takes only --out and --fleet (not --target, "
                "--kinds, --filter, --adopt, --resume or --rate)"
            )
        _import_dumps(Path(dumps), Path(out), Path(fleet))
        return
    if target is None:
        raise click.UsageError("give --target (a Target of the fleet) or --dumps (a folder of device dumps)")
    try:
        parsed = tuple(Filter.parse(f) for f in filters)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--filter") from None
    env = dict(os.environ)
    for rate in rates:
        if not re.fullmatch(r"[A-Za-z]+=\d+(\.\d+)?", rate) or float(rate.split("=")[1]) <= 0:
            raise click.BadParameter(
                f"{rate!r} is not API=REQUESTS_PER_SECOND (e.g. ListThings=20)", param_hint="--rate"
            )
    if rates:
        env["FLEETCTL_QUOTAS"] = ",".join(filter(None, [env.get("FLEETCTL_QUOTAS", ""), *rates]))
    if no_rate_limit:
        env["FLEETCTL_RATE_LIMIT"] = "off"
    request = ImportRequest(
        target=target,
        out=Path(out),
        fleet=Path(fleet),
        kinds=kinds,
        filters=parsed,
        adopt=adopt,
        resume=resume,
        page_size=page_size,
    )
    try:
        from engine import console
        from engine import progress as bars

        sink = bars.sink_for(sys.stderr, env, color=console.current().color(err=True))  # things read (stderr)
        report = run_import(request, run.Context(env=env, progress=sink), progress=_echo_err)
    except KeyboardInterrupt:
        _echo_err(f"interrupted: what was read is kept in {out}; run the same command with --resume to continue")
        sys.exit(1)
    total = sum(report.written.values())
    counts = ", ".join(f"{n} {k.split('.', 1)[1]}" for k, n in report.written.items()) or "nothing"
    click.echo(f"Imported {total} resource(s) from {target} into {out}: {counts}.")
    skipped = sum(report.skipped.values())
    declared = sum(report.declared.values())
    if declared:
        click.echo(f"{declared} already declared in {fleet}: left to the fleet.")
    if skipped or report.notes:
        click.echo(f"{skipped} skipped; {len(report.notes)} note(s) to review in {Path(out) / 'IMPORT.md'}.")
    if report.secrets:
        click.echo(f"{len(report.secrets)} secret(s) to fill in: {Path(out) / 'IMPORT-SECRETS.md'}.")
    calls = sum(report.calls.values())
    _echo_err(
        f"{target}: {calls:,} API call(s) in {report.seconds:.1f}s"
        + (f", {report.paced_seconds:.1f}s of it paced to the API quotas" if report.paced_seconds else "")
        + (
            f"; restored from the checkpoint: {', '.join(k.split('.', 1)[1] for k in report.resumed)}"
            if report.resumed
            else ""
        )
    )
    plan_path = fleet if inside(Path(out), Path(fleet)) else out
    if report.adopted:
        click.echo(
            f"{report.adopted} resource(s) annotated for adoption: `fleetctl plan {plan_path}` shows one "
            "update each that adds the ownership marker; review and apply it."
        )
    else:
        click.echo(f"Next: `fleetctl plan {plan_path} --detailed-exitcode` should report no changes.")


def _import_dumps(dumps: Path, out: Path, fleet: Path) -> None:
    from engine import run
    from engine.clock import iso
    from engine.importer.device import run_device_import

    ctx = run.Context(env=dict(os.environ))
    report = run_device_import(dumps, out, fleet, ctx.env, iso(ctx.now()))
    total = sum(report.written.values())
    models = len([f for f in report.files if f.startswith("devices/")])
    click.echo(f"Imported {total} device(s) from {dumps} into {out}: {models} DeviceConfig(s).")
    declared = sum(report.declared.values())
    if declared:
        click.echo(f"{declared} already configured in {fleet}: left to the fleet.")
    skipped = sum(report.skipped.values())
    click.echo(f"{skipped} skipped; {len(report.notes)} note(s) to review in {out / 'IMPORT.md'}.")
    if report.secrets:
        click.echo(f"{len(report.secrets)} secret(s) to fill in: {out / 'IMPORT-SECRETS.md'}.")
    click.echo(f"Next: `fleetctl plan {out} --dumps {dumps} --detailed-exitcode` should report no changes.")
