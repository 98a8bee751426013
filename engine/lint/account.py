"""Lint rules of the account settings and custom authentication (issue 17): the Device Defender audit checks
fleetctl can mirror from the manifests alone — logging off or below WARN (LOGGING_DISABLED_CHECK), audit checks
left disabled, and a custom authorizer that accepts unsigned tokens. Rules read the raw documents
(engine/lint/__init__.py), so each hit points at the field's line."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from engine.lint import Hit, Level, LintContext, rule

AWS = "aws.fleetctl.io"
# the checks an IoT fleet's audit should run at least (the AWS IoT Device Defender guide's certificate, policy
# and logging checks); option `checks` replaces the list
ESSENTIAL_CHECKS = (
    "LOGGING_DISABLED_CHECK",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "CA_CERTIFICATE_EXPIRING_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
    "CONFLICTING_CLIENT_IDS_CHECK",
)


@rule(
    "FL025",
    "logging-disabled",
    Level.WARNING,
    security_severity=6.0,
    summary="LoggingOptions turn AWS IoT logging off, or set a level below WARN (Device Defender "
    "LOGGING_DISABLED_CHECK): device authorization failures go unrecorded",
    hint="set defaultLogLevel: WARN (or INFO) and disableAllLogs: false; lower the level per thing group with "
    "`levels` where the volume matters",
)
def logging_disabled(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    for doc in ctx.of(AWS, "LoggingOptions"):
        spec = doc.spec
        if spec.get("disableAllLogs") is True:
            yield Hit(doc, ("spec", "disableAllLogs"), "disableAllLogs: true turns off all AWS IoT logging")
        level = spec.get("defaultLogLevel", "ERROR")
        if level in ("ERROR", "DISABLED"):
            path = ("spec", "defaultLogLevel") if "defaultLogLevel" in spec else ("spec",)
            yield Hit(
                doc,
                path,
                f"defaultLogLevel {level} is below WARN: authorization failures logged as "
                f"warnings are dropped" + (" (ERROR is the default)" if "defaultLogLevel" not in spec else ""),
            )
        for i, target in enumerate(spec.get("levels") or []):
            if isinstance(target, dict) and target.get("logLevel") == "DISABLED":
                yield Hit(
                    doc,
                    ("spec", "levels", i, "logLevel"),
                    f"logging is DISABLED for {target.get('targetType')} {target.get('targetName')}",
                )


@rule(
    "FL026",
    "audit-checks-disabled",
    Level.WARNING,
    security_severity=5.0,
    checks=list(ESSENTIAL_CHECKS),
    summary="AccountAuditConfiguration leaves essential Device Defender audit checks disabled, or sends "
    "findings nowhere (option: checks)",
    hint="add the checks to enabledChecks, schedule them with a ScheduledAudit, and declare an enabled sns target",
)
def audit_checks_disabled(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    wanted = list(options["checks"])
    for doc in ctx.of(AWS, "AccountAuditConfiguration"):
        enabled = set(doc.spec.get("enabledChecks") or [])
        missing = [c for c in wanted if c not in enabled]
        if missing:
            path = ("spec", "enabledChecks") if "enabledChecks" in doc.spec else ("spec",)
            yield Hit(doc, path, f"audit check(s) disabled: {', '.join(missing)}")
        sns = doc.spec.get("sns")
        if not isinstance(sns, dict) or sns.get("enabled") is False:
            yield Hit(
                doc,
                ("spec", "sns") if isinstance(sns, dict) else ("spec",),
                "audit findings are sent nowhere (no enabled sns target)",
                Level.NOTE,
            )


@rule(
    "FL027",
    "authorizer-signing-disabled",
    Level.WARNING,
    security_severity=7.0,
    summary="a custom Authorizer accepts unsigned tokens (signingDisabled: true): every connection attempt "
    "invokes its Lambda, and the token is whatever the client sends",
    hint="keep signing on: declare tokenKeyName and tokenSigningPublicKeys; where signing cannot apply (MQTT "
    "user name and password), suppress with the annotation fleetctl.io/lint-ignore: FL027",
)
def authorizer_signing_disabled(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    for doc in ctx.of(AWS, "Authorizer"):
        if doc.spec.get("signingDisabled") is True:
            yield Hit(doc, ("spec", "signingDisabled"), f"authorizer '{doc.name}' has token signing disabled")
