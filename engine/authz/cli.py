"""`fleetctl authz`: effective permissions from the manifests, no cloud call.

`check` answers one request for one declared thing, as TestAuthorization would on a live account; `matrix`
prints what each thing may connect as, publish, subscribe and receive, folding identical rows. Both load the
fleet with `resolve_secrets=False`: no secret is read, so they run in any CI job.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import sys

import click

from engine.authz import AuthzFleet, resource_type
from engine.authz import check as check_request
from engine.authz.matrix import COLUMNS, Row
from engine.authz.matrix import matrix as build_matrix
from engine.diagnostics import FleetctlError, error

EXIT_ALLOWED, EXIT_ERROR, EXIT_DENIED = 0, 1, 2
ENV_HELP = (
    "Environment: FLEETCTL_DEBUG=1 prints a traceback on an internal error. No credential or secret is "
    "read (the fleet is loaded with resolve_secrets=False)."
)


def _load(path: str) -> AuthzFleet:
    from engine.manifest.fleet import load_fleet

    fleet = load_fleet(path, resolve_secrets=False)
    if fleet.diagnostics.errors:
        raise FleetctlError(fleet.diagnostics.sorted())
    return AuthzFleet.from_fleet(fleet)


@click.group("authz")
def command() -> None:
    """Effective permissions of the declared devices (AWS IoT policies), from the manifests only.

    Policies attached to a thing's certificates and inherited from its thing groups (and their parents) are
    evaluated as AWS IoT does: explicit Deny wins, then Allow, else implicit deny; policy variables resolve from
    the thing, its type and attributes and the certificate's subject and issuer. ARNs use the Target's region
    and accountId; a Target without accountId uses the one account its policies name, else 123456789012.
    """


@command.command("check")
@click.argument("thing")
@click.option("--action", required=True, help="e.g. iot:Connect, iot:Publish, iot:Subscribe, iot:Receive")
@click.option("--topic", help="topic (Publish/Receive) or topic filter (Subscribe); the ARN is built for you")
@click.option("--resource", help="a full resource ARN instead of --topic")
@click.option("--client-id", help="the MQTT client id the device connects with (default: the thing name)")
@click.option("--target", help="the Target, when several declare a thing of that name")
@click.option("--fleet", "path", default="fleet", show_default=True, type=click.Path(), help="fleet folder")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check(
    thing: str,
    action: str,
    topic: str | None,
    resource: str | None,
    client_id: str | None,
    target: str | None,
    path: str,
    fmt: str,
) -> None:
    """Is THING allowed ACTION (on --topic or --resource)? One answer per certificate attached to THING, with the
    statements that decided (policy, Sid or index, file:line). Allowed means allowed for every certificate of
    THING; denied, for at least one.
    """
    fleet = _load(path)
    node = fleet.thing(thing, target)
    if node is None:
        names = sorted(f"{t}/{n}" for (t, n) in fleet.things if n == thing)
        raise FleetctlError(
            error(
                f"no declared thing '{thing}'" + (f" in target '{target}'" if target else ""),
                f"declared in: {', '.join(names)} (use --target)"
                if names
                else f"{len(fleet.things)} thing(s) declared",
            )
        )
    rtype = resource_type(action)
    if resource is None:
        if topic is not None and rtype in ("topic", "topicfilter"):
            resource = fleet.arn(node.target, rtype, topic)
        elif rtype == "client":
            resource = fleet.arn(node.target, "client", client_id or node.name)
        elif rtype == "thing":
            resource = fleet.arn(node.target, "thing", node.name)
        else:
            raise FleetctlError(
                error(f"{action} needs --topic or --resource", "Publish/Receive take a topic, Subscribe a topic filter")
            )
    answers = check_request(fleet, node.name, node.target, action, resource, client_id)
    account, placeholder = fleet.account(node.target)
    if fmt == "json":
        click.echo(
            json.dumps(
                {"answers": [a.to_json() for a in answers], "account": account, "accountPlaceholder": placeholder},
                indent=2,
            )
        )
    else:
        for a in answers:
            r = a.result
            click.echo(
                f"{r.decision.value.upper()}: {node.name} via {a.connection.label}, client id "
                f"{a.client_id}: {r.request}"
            )
            click.echo(f"  {r.reason}")
            for st in r.deciding:
                click.echo(f"  {st.effect} {st.where}")
            for key in r.assumed:
                click.echo(f"  note: condition key {key} cannot be known offline; taken as absent")
        if placeholder:
            click.echo(f"note: target '{node.target}' declares no accountId; ARNs use account {account}")
    sys.exit(EXIT_ALLOWED if answers and all(a.result.allowed for a in answers) else EXIT_DENIED)


def _table(rows: list[Row]) -> str:
    headers = ["things", "connection"] + [name for name, _, _ in COLUMNS]
    grid = []
    for row in rows:
        names = row.things[0] + (f"\n(+{row.count - 1:,} more)" if row.count > 1 else "")
        grid.append([f"{row.count:,} thing(s)\n{names}", row.connection] + ["\n".join(c.lines()) for c in row.cells])
    widths = [max([len(h)] + [len(line) for r in grid for line in r[i].split("\n")]) for i, h in enumerate(headers)]
    out = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r in grid:
        cells = [c.split("\n") for c in r]
        for i in range(max(len(c) for c in cells)):
            out.append(
                "  ".join((c[i] if i < len(c) else "").ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
            )
        out.append("")
    return "\n".join(out)


@command.command("matrix")
@click.option("--things", "glob", default="*", show_default=True, help="thing names to include (shell glob)")
@click.option("--target", help="only things of this Target")
@click.option("--fleet", "path", default="fleet", show_default=True, type=click.Path(), help="fleet folder")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text", show_default=True)
def matrix(glob: str, target: str | None, path: str, fmt: str) -> None:
    """What each thing may connect as, publish, subscribe and receive. Things whose permissions are the same up
    to their own name (shown as ${thing}) are one row with their count; `--format json` and `csv` list every
    thing of a row. `deny X` in a cell is a Deny that takes X away from the Allow patterns above it. Exit 0 also
    when no thing matches.
    """
    fleet = _load(path)
    things = sorted(
        (t for (tg, n), t in fleet.things.items() if fnmatch.fnmatchcase(n, glob) and (target is None or tg == target)),
        key=lambda t: (t.target, t.name),
    )
    rows = build_matrix(fleet, things)
    if fmt == "json":
        click.echo(json.dumps({"rows": [r.to_json() for r in rows], "things": len(things)}, indent=2))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["target", "count", "connection"] + [name for name, _, _ in COLUMNS] + ["things"])
        for r in rows:
            w.writerow(
                [r.target, r.count, r.connection] + ["; ".join(c.lines()) for c in r.cells] + [" ".join(r.things)]
            )
        click.echo(buf.getvalue(), nl=False)
    else:
        click.echo(_table(rows) if rows else "no thing matches")
        click.echo(
            f"{len(things):,} thing(s) in {len(rows)} row(s)" + (" (${thing}: the thing's own name)" if rows else "")
        )


command.help = (command.help or "") + "\n\n" + ENV_HELP
check.help = (check.help or "") + "\n\n" + ENV_HELP
matrix.help = (matrix.help or "") + "\n\n" + ENV_HELP
