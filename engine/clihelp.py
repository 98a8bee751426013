"""Exit codes and environment variables of every command, declared once and rendered into each command's help.

Why a table: the exit codes (DESIGN §1.2) and the environment a command reads are part of its contract (a CI
job branches on `plan --detailed-exitcode`'s 2, a drift cron job alerts on 2); written by hand into docstrings
they drift from the code. Here each command names its exit codes and the variables it reads, from one
description per variable; `apply_epilogs` writes them into the commands' help epilogs, and
tests/test_cli_help.py walks every registered command (plugins of COMMAND_MODULES included) and checks that
each has its table and that every variable the engine reads is described here.
"""

from __future__ import annotations

from collections.abc import Mapping

import click

from engine.manifest.limits import LIMITS as INPUT_LIMITS

# every variable fleetctl reads, once: name → what it does
ENV: dict[str, str] = {
    "NO_COLOR": "any non-empty value: no colour (https://no-color.org)",
    "FORCE_COLOR": "any non-empty value: colour even when piped (--color/--no-color win)",
    "TERM": "`dumb`: no colour and no progress bars",
    "FLEETCTL_DEBUG": "any non-empty value: a traceback instead of the one-line internal error",
    "FLEETCTL_JOURNAL": "the apply journal (default .fleetctl/journal.jsonl; --journal wins)",
    "FLEETCTL_WORKERS": "changes applied concurrently, and the estimate's concurrency (default 8)",
    "FLEETCTL_NOW": "a fixed clock (ISO 8601), for reproducible plans and tests",
    "SOURCE_DATE_EPOCH": "a fixed clock (Unix seconds) when FLEETCTL_NOW is not set",
    "FLEETCTL_GIT_COMMIT": "the commit a plan records (else GITHUB_SHA, else git HEAD)",
    "GITHUB_SHA": "the commit a plan records when FLEETCTL_GIT_COMMIT is not set",
    "FLEETCTL_ACTOR": "who applied, in the journal (else GITHUB_ACTOR, else USER)",
    "GITHUB_ACTOR": "who applied, when FLEETCTL_ACTOR is not set",
    "USER": "who applied, when neither FLEETCTL_ACTOR nor GITHUB_ACTOR is set",
    "FLEETCTL_PULL_REQUEST": "the pull request an apply carries out, recorded in the journal",
    "FLEETCTL_RUN_URL": "the CI run of an apply, recorded in the journal",
    "FLEETCTL_DUMPS": "folder of device dumps (--dumps wins)",
    "FLEETCTL_DEVICE_STATE": "device state file (default: next to the journal)",
    "FLEETCTL_ARTIFACTS": "folder of device artifacts (--artifacts wins)",
    "FLEETCTL_PROGRESS": "auto (bars on a terminal, lines otherwise), bar, lines or off; progress goes to stderr",
    "FLEETCTL_PROGRESS_SECONDS": "seconds between progress lines off a terminal (default 10; also every 5 %)",
    "FLEETCTL_QUOTAS": "raised API quotas, API=TPS,API=TPS (after a Service Quotas increase)",
    "FLEETCTL_RATE_LIMIT": "auto (pace cloud endpoints, not a loopback emulator), on or off",
    "FLEETCTL_RATE_PROBE": "let the pacing climb to this factor × the configured quotas (default 1)",
    "FLEETCTL_AZURE_HUB_TIER": "IoT Hub tier and units for pacing and the estimate, e.g. S1 or S3:2 (default S1)",
    "FLEETCTL_ARM_ENDPOINT": "Azure Resource Manager endpoint (hub certificates; default management.azure.com)",
    "FLEETCTL_ARM_TOKEN": "Azure Resource Manager bearer token (hub certificates): a fallback that wins over the "
    "Entra ID chain; it expires in about an hour",
    "AZURE_TENANT_ID": "Microsoft Entra tenant (azure-identity's chain, with AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
    "or AZURE_FEDERATED_TOKEN_FILE); ARM and auth: entraId Targets",
    "AZURE_CLIENT_ID": "application (client) id of the service principal or federated identity fleetctl signs in as",
    "AZURE_CLIENT_SECRET": "client secret of that application (the sandbox exports its own, sandbox-only one)",
    "AZURE_FEDERATED_TOKEN_FILE": "workload identity federation token file (e.g. GitHub Actions OIDC via azure/login)",
    "AZURE_AUTHORITY_HOST": "Microsoft Entra authority (default login.microsoftonline.com; the sandbox's local "
    "token endpoint)",
    "AZURE_TOKEN_CREDENTIALS": "which credentials DefaultAzureCredential tries: dev, prod or one credential's name",
    "FLEETCTL_HUB_HOST": "the IoT Hub host auth: entraId Targets call instead of hub.hostName (loopback only: "
    "the sandbox)",
    "FLEETCTL_DPS_HOST": "the DPS host auth: entraId Targets call instead of dps.hostName (loopback only: the sandbox)",
    "REQUESTS_CA_BUNDLE": "CA bundle for the Azure endpoints (e.g. the sandbox's emulators)",
    "AWS_PROFILE": "AWS credentials profile (a Target's aws.profile wins)",
    "AWS_REGION": "AWS region (a Target's aws.region wins; also AWS_DEFAULT_REGION)",
    "AWS_ACCESS_KEY_ID": "AWS credentials, with AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (boto3's chain)",
    "AWS_ENDPOINT_URL": "AWS endpoint for every service (e.g. the sandbox's moto)",
    "AWS_ENDPOINT_URL_IOT": "AWS IoT endpoint (wins over AWS_ENDPOINT_URL)",
    "AWS_ENDPOINT_URL_S3": "S3 endpoint for bulk-registration files (wins over AWS_ENDPOINT_URL)",
    "AWS_ENDPOINT_URL_STS": "STS endpoint for a Target's aws.assumeRole, its account check and the account a "
    "snapshot records (wins over AWS_ENDPOINT_URL)",
    "AWS_ENDPOINT_URL_CLOUDTRAIL": "CloudTrail endpoint for incremental drift reads (wins over AWS_ENDPOINT_URL)",
    "FLEETCTL_TRAIL_LOOKUP": "how --since-snapshot looks CloudTrail events up: write-only (ReadOnly=false, the "
    "default) or event-source (EventSource=iot.amazonaws.com)",
    "FLEETCTL_FINGERPRINT_KEY": "key of the keyed secret fingerprints (a CI secret shared by plan and apply; "
    "docs/security.md); else a per-user key file",
    "FLEETCTL_FINGERPRINT_KEY_FILE": "the per-user fingerprint key file (default ~/.fleetctl/fingerprint.key)",
    "FLEETCTL_SANDBOX_QUOTAS": "1: start the sandbox quota-faithful (as --quota-faithful)",
    "<NAME>": "each variable a manifest names in an {env: NAME} secret reference",
    **{
        limit.env: f"limit on the {limit.bounds} (default {limit.default:,}; docs/manifest-limits.md)"
        for limit in INPUT_LIMITS
    },
}

ALWAYS = ("NO_COLOR", "FORCE_COLOR", "TERM", "FLEETCTL_DEBUG")
CLOCK = ("FLEETCTL_NOW", "SOURCE_DATE_EPOCH", "FLEETCTL_GIT_COMMIT", "GITHUB_SHA")
PROGRESS = ("FLEETCTL_PROGRESS", "FLEETCTL_PROGRESS_SECONDS")
PACING = ("FLEETCTL_QUOTAS", "FLEETCTL_RATE_LIMIT", "FLEETCTL_RATE_PROBE", "FLEETCTL_AZURE_HUB_TIER")
CLOUD = (
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_IOT",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_CLOUDTRAIL",
    "AWS_ENDPOINT_URL_STS",
    "FLEETCTL_ARM_ENDPOINT",
    "FLEETCTL_ARM_TOKEN",
    "REQUESTS_CA_BUNDLE",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
    "FLEETCTL_HUB_HOST",
    "FLEETCTL_DPS_HOST",
)
FINGERPRINT = ("FLEETCTL_FINGERPRINT_KEY", "FLEETCTL_FINGERPRINT_KEY_FILE")
LIMITS = tuple(limit.env for limit in INPUT_LIMITS)  # what a manifest folder may make a load read (limits.py)
READS = (
    "FLEETCTL_JOURNAL",
    "FLEETCTL_WORKERS",
    *CLOCK,
    "FLEETCTL_DUMPS",
    "FLEETCTL_DEVICE_STATE",
    *PROGRESS,
    *PACING,
    *CLOUD,
    *FINGERPRINT,
    "<NAME>",
    *LIMITS,
)
APPLIES = (
    *READS,
    "FLEETCTL_ACTOR",
    "GITHUB_ACTOR",
    "USER",
    "FLEETCTL_PULL_REQUEST",
    "FLEETCTL_RUN_URL",
    "FLEETCTL_ARTIFACTS",
)

OK_ERROR = {0: "success", 1: "an error (diagnostics on stderr)"}


# command path (as typed after `fleetctl`) → (exit codes, environment variables besides ALWAYS)
COMMANDS: dict[str, tuple[Mapping[int, str], tuple[str, ...]]] = {
    "": (
        {
            0: "success, or no changes",
            2: "changes (plan --detailed-exitcode), drift, lint findings",
            1: "any error (diagnostics on stderr; never a traceback)",
        },
        tuple(k for k in ENV if k not in ALWAYS),
    ),
    "validate": (
        {
            0: "the manifests are valid (with --schema-only: against the published JSON Schemas)",
            1: "errors in the manifests (each at file:line:col)",
        },
        (*FINGERPRINT, "<NAME>", *LIMITS),
    ),
    "plan": (
        {
            0: "success (also with changes, unless --detailed-exitcode)",
            2: "changes (with --detailed-exitcode)",
            1: "an error; no applicable plan file is written",
        },
        (*READS, "FLEETCTL_TRAIL_LOOKUP"),
    ),
    "drift": (
        {
            0: "in sync",
            2: "drift: the actual state differs from the manifests",
            1: "an error (reading failed): never reported as in sync",
        },
        (*READS, "FLEETCTL_TRAIL_LOOKUP"),
    ),
    "show": ({0: "shown", 1: "an unreadable plan file, or no change matches --address"}, ()),
    "targets": (
        {0: "listed (also when none is touched)", 1: "an error (the fleet could not be read, or REV is unknown)"},
        ("<NAME>", *LIMITS),
    ),
    "apply": (
        {
            0: "every change applied, or nothing to do",
            1: "an error: a stale or failed plan, a change that "
            "failed or was skipped (details on stderr and in the journal)",
        },
        APPLIES,
    ),
    "sandbox": (OK_ERROR, ()),
    "sandbox up": (OK_ERROR, ("FLEETCTL_SANDBOX_QUOTAS",)),
    "sandbox env": (OK_ERROR, ()),
    "sandbox down": (OK_ERROR, ()),
    "lint": ({0: "no findings", 2: "findings", 1: "an error (the fleet could not be read)"}, ("<NAME>", *LIMITS)),
    "history": (OK_ERROR, ()),
    "authz": (OK_ERROR, ()),
    "authz check": (
        {
            0: "allowed (for every certificate of THING)",
            2: "denied (explicitly or implicitly, for at least one)",
            1: "an error (unknown thing, invalid fleet, missing resource)",
        },
        (),
    ),
    "authz matrix": (OK_ERROR, ()),
    "journal": (OK_ERROR, ("FLEETCTL_JOURNAL",)),
    "import": (
        {0: "imported", 1: "an error or an interruption (--resume continues)"},
        ("FLEETCTL_NOW", "SOURCE_DATE_EPOCH", *PACING, *CLOUD),
    ),
}

MARKER = "Exit codes:"


UNDECLARED = (OK_ERROR, ())  # a command missing from COMMANDS (tests/test_cli_help.py fails on it)


def epilog(path: str) -> str:
    """The help epilog of one command: its exit codes, then the environment variables it reads."""
    exits, names = COMMANDS.get(path, UNDECLARED)
    width = max(len(n) for n in (*ALWAYS, *names))
    lines = ["\b", MARKER] + [f"  {code}  {what}" for code, what in sorted(exits.items())]
    lines += ["", "\b", "Environment:"] + [f"  {n:<{width}}  {ENV[n]}" for n in (*names, *ALWAYS)]
    return "\n".join(lines)


def command_paths(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """Every command under `group` by its path (`sandbox up`), the group itself as ''."""
    out: dict[str, click.Command] = {prefix: group} if not prefix else {}
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix} {name}".strip()
        out[path] = cmd
        if isinstance(cmd, click.Group):
            out.update({p: c for p, c in command_paths(cmd, path).items() if p != path})
    return out


def apply_epilogs(group: click.Group) -> None:
    """Write each command's table into its help epilog (after any epilog of its own); idempotent."""
    for path, cmd in command_paths(group).items():
        own = (cmd.epilog or "").split(MARKER)[0].rstrip("\b\n ")
        cmd.epilog = (own + "\n\n" if own else "") + epilog(path)
