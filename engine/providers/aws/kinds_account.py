"""aws.fleetctl.io/v1 kinds of issue 17 (part b): the account singletons, Device Defender audit, custom
authorizers, domain configurations and topic-rule destinations — declared once, as every other kind.

Account singletons (IndexingConfiguration, LoggingOptions, EventConfigurations, AccountAuditConfiguration) are
settings of an AWS account and region, not resources: there is always exactly one, so they are never created nor
deleted. A Target declaring one owns it whole (every field is managed, the model's defaults included: what the
manifest leaves out is set to that default); the plan says so on every change. Removing the manifest leaves the
setting as it is in the account and fleetctl stops managing it (prune never touches a singleton). Two Targets
in the same account (the same `aws.accountId`, or where either leaves it out: the same region, profile and
endpoint) declaring the same singleton is an error naming both files.

Named kinds (ScheduledAudit, Authorizer, DomainConfiguration) carry the tag managed-by=fleetctl. A
TopicRuleDestination cannot be tagged on AWS: it is managed only while declared, and prune never deletes an
undeclared one. A TopicRule whose http action posts under a declared destination's confirmation URL depends on
it, so it is applied after the destination is ENABLED (the destination's apply waits for the confirmation).

No boto3 here (validating a manifest must not import an SDK).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from engine.kinds import ListKey, Ref
from engine.manifest.core_kinds import AwsTargetSpec, TargetSpec
from engine.manifest.expand import ExpandContext, Expanded, declared, simple_desired
from engine.manifest.specs import spec_as
from engine.manifest.types import IAM_ROLE_ARN, Name, Pem, Strict
from engine.manifest.validation import Manifest
from engine.model import Action, Address, Change
from engine.pki import holds_private_key
from engine.providers.aws.kinds import ExpandFn, aws
from engine.providers.aws.references import rule_destinations  # noqa: F401 - its home was here

LogLevel = Literal["DEBUG", "INFO", "WARN", "ERROR", "DISABLED"]
EventType = Literal[
    "THING",
    "THING_GROUP",
    "THING_TYPE",
    "THING_GROUP_MEMBERSHIP",
    "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
    "JOB",
    "JOB_EXECUTION",
    "POLICY",
    "CERTIFICATE",
    "CA_CERTIFICATE",
]
# Device Defender audit checks (AWS IoT Developer Guide, "Audit checks"; the sandbox serves the same list)
AUDIT_CHECKS = (
    "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
    "CA_CERTIFICATE_EXPIRING_CHECK",
    "CA_CERTIFICATE_KEY_QUALITY_CHECK",
    "CONFLICTING_CLIENT_IDS_CHECK",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK",
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK",
    "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK",
    "LOGGING_DISABLED_CHECK",
    "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
    "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
    "DEVICE_CERTIFICATE_AGE_CHECK",
    "IOT_POLICY_POTENTIAL_MIS_CONFIGURATION_CHECK",
)
EVENT_TYPES: tuple[str, ...] = get_args(EventType)  # the registry event types, for the sandbox too
SINGLETONS = ("IndexingConfiguration", "LoggingOptions", "EventConfigurations", "AccountAuditConfiguration")
OWNED_WHOLE = "account-wide setting, owned whole by this Target"
LAMBDA_ARN = r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$"


# ---------------------------------------------------------------------------------------------- singletons
class CustomField(Strict):
    name: str = Field(min_length=1)
    type: Literal["Number", "String", "Boolean"]


class IndexingConfigurationSpec(Strict):
    thingIndexingMode: Literal["OFF", "REGISTRY", "REGISTRY_AND_SHADOW"] = "OFF"
    thingConnectivityIndexingMode: Literal["OFF", "STATUS"] = "OFF"
    deviceDefenderIndexingMode: Literal["OFF", "VIOLATIONS"] = "OFF"
    namedShadowIndexingMode: Literal["OFF", "ON"] = "OFF"
    thingGroupIndexingMode: Literal["OFF", "ON"] = "OFF"
    customFields: list[CustomField] = Field(default_factory=list, description="thing index custom fields")

    @model_validator(mode="after")
    def _needs_index(self) -> IndexingConfigurationSpec:
        if self.thingIndexingMode == "OFF" and (
            self.thingConnectivityIndexingMode != "OFF"
            or self.deviceDefenderIndexingMode != "OFF"
            or self.namedShadowIndexingMode != "OFF"
            or self.customFields
        ):
            raise ValueError(
                "connectivity, Device Defender, named-shadow indexing and custom fields need "
                "thingIndexingMode REGISTRY or REGISTRY_AND_SHADOW (AWS refuses them with the index OFF)"
            )
        return self


class LogLevelTarget(Strict):
    targetType: Literal["THING_GROUP", "CLIENT_ID", "SOURCE_IP", "PRINCIPAL_ID"]
    targetName: str = Field(min_length=1)
    logLevel: LogLevel


class LoggingOptionsSpec(Strict):
    roleArn: str = Field(pattern=IAM_ROLE_ARN, description="IAM role AWS IoT assumes to write to CloudWatch Logs")
    defaultLogLevel: LogLevel = "ERROR"
    disableAllLogs: bool = False
    levels: list[LogLevelTarget] = Field(
        default_factory=list, description="per-target log levels (the whole set is managed: others are deleted)"
    )

    @field_validator("levels")
    @classmethod
    def _unique(cls, v: list[LogLevelTarget]) -> list[LogLevelTarget]:
        keys = [level_key(t.targetType, t.targetName) for t in v]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"a log target is declared twice: {', '.join(dup)}")
        return v


def level_key(target_type: str, target_name: str) -> str:
    """The key of a per-target log level in the canonical shape (`levels` is a map: type/name → level)."""
    return f"{target_type}/{target_name}"


class EventConfigurationsSpec(Strict):
    enabled: list[EventType] = Field(
        default_factory=list, description="registry event types published; every other type is disabled"
    )


class SnsTarget(Strict):
    targetArn: str = Field(
        pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$",
        description="SNS topic (by ARN)",
    )
    roleArn: str = Field(pattern=IAM_ROLE_ARN, description="role AWS IoT assumes to publish to the topic")
    enabled: bool = True


class AccountAuditConfigurationSpec(Strict):
    roleArn: str = Field(pattern=IAM_ROLE_ARN, description="role Device Defender assumes to read the account")
    sns: SnsTarget | None = Field(None, description="where audit findings are sent")
    enabledChecks: list[str] = Field(
        default_factory=list, description="audit checks enabled; every other check is disabled"
    )

    @field_validator("enabledChecks")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [c for c in v if c not in AUDIT_CHECKS]
        if unknown:
            raise ValueError(f"unknown audit check(s) {', '.join(unknown)}; known: {', '.join(AUDIT_CHECKS)}")
        return v


class ScheduledAuditSpec(Strict):
    frequency: Literal["DAILY", "WEEKLY", "BIWEEKLY", "MONTHLY"]
    dayOfMonth: str | None = Field(None, pattern=r"^([1-9]|[12][0-9]|3[01])$|^LAST$")
    dayOfWeek: Literal["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] | None = None
    targetCheckNames: list[str] = Field(
        min_length=1, description="checks run (each must be enabled in the AccountAuditConfiguration)"
    )

    @model_validator(mode="after")
    def _schedule(self) -> ScheduledAuditSpec:
        if self.frequency in ("WEEKLY", "BIWEEKLY") and self.dayOfWeek is None:
            raise ValueError(f"a {self.frequency} audit needs dayOfWeek")
        if self.frequency == "MONTHLY" and self.dayOfMonth is None:
            raise ValueError("a MONTHLY audit needs dayOfMonth")
        if self.frequency != "MONTHLY" and self.dayOfMonth is not None:
            raise ValueError("dayOfMonth applies to MONTHLY audits only")
        if self.frequency not in ("WEEKLY", "BIWEEKLY") and self.dayOfWeek is not None:
            raise ValueError("dayOfWeek applies to WEEKLY and BIWEEKLY audits only")
        unknown = [c for c in self.targetCheckNames if c not in AUDIT_CHECKS]
        if unknown:
            raise ValueError(f"unknown audit check(s) {', '.join(unknown)}")
        return self


# ---------------------------------------------------------------------------------------------- authn
class AuthorizerSpec(Strict):
    authorizerFunction: str = Field(pattern=LAMBDA_ARN, description="the Lambda function (by ARN)")
    tokenKeyName: str | None = Field(None, pattern=r"^[a-zA-Z0-9_-]+$", max_length=128)
    tokenSigningPublicKeys: dict[str, Pem] = Field(
        default_factory=dict,
        description="public keys (PEM) that verify token signatures; fleetctl never reads private keys",
    )
    status: Literal["ACTIVE", "INACTIVE"] = "ACTIVE"
    signingDisabled: bool = Field(False, description="accept unsigned tokens (immutable on AWS)")
    enableCachingForHttp: bool = False

    @model_validator(mode="after")
    def _signing(self) -> AuthorizerSpec:
        if not self.signingDisabled and not (self.tokenKeyName and self.tokenSigningPublicKeys):
            raise ValueError("tokenKeyName and tokenSigningPublicKeys are required unless signingDisabled is true")
        return self


class DomainConfigurationSpec(Strict):
    domainName: str | None = Field(None, description="custom domain (immutable); none: an AWS-managed domain")
    serverCertificateArns: list[str] = Field(
        default_factory=list, max_length=1, description="ACM certificate of the custom domain (immutable)"
    )
    validationCertificateArn: str | None = Field(
        None, description="ACM certificate proving domain ownership (immutable)"
    )
    serviceType: Literal["DATA", "CREDENTIAL_PROVIDER", "JOBS"] = "DATA"
    authorizer: Name | None = Field(None, description="the default custom Authorizer")
    allowAuthorizerOverride: bool = False
    tlsPolicy: str = Field("IoTSecurityPolicy_TLS13_1_2_2022_10", pattern=r"^IoTSecurityPolicy_[A-Za-z0-9_]+$")
    status: Literal["ENABLED", "DISABLED"] = "ENABLED"


# ---------------------------------------------------------------------------------------------- destinations
class HttpDestination(Strict):
    confirmationUrl: str = Field(
        pattern=r"^https://[^\s/$.?#][^\s]*$",
        max_length=2000,
        description="HTTPS URL AWS sends the confirmation token to; rule actions post under it",
    )


class VpcDestination(Strict):
    vpcId: str = Field(pattern=r"^vpc-[0-9a-f]+$")
    subnetIds: list[str] = Field(min_length=1)
    securityGroups: list[str] = Field(default_factory=list)
    roleArn: str = Field(pattern=IAM_ROLE_ARN)


class TopicRuleDestinationSpec(Strict):
    http: HttpDestination | None = None
    vpc: VpcDestination | None = None
    status: Literal["ENABLED", "DISABLED"] = "ENABLED"
    confirmationWaitSeconds: float = Field(
        300,
        ge=0,
        le=3600,
        description="how long apply waits for the endpoint "
        "to confirm a new HTTP destination before it fails (rules using it wait)",
    )

    @model_validator(mode="after")
    def _one(self) -> TopicRuleDestinationSpec:
        if (self.http is None) == (self.vpc is None):
            raise ValueError("a TopicRuleDestination has exactly one of: http, vpc")
        return self


# ---------------------------------------------------------------------------------------------- expand
def same_account(a: AwsTargetSpec, b: AwsTargetSpec) -> bool:
    """Whether two Targets' `aws` settings address the same AWS account and region: by accountId where both
    declare it, else by region, profile and endpoint (the same credentials reach the same account)."""
    if a.region != b.region:
        return False
    if a.accountId and b.accountId:
        return a.accountId == b.accountId
    return (a.profile, a.endpointUrl) == (b.profile, b.endpointUrl)


def _singleton_conflicts(ctx: ExpandContext, m: Manifest) -> bool:
    """An error (naming both files) for each other declaration of this singleton in the same account."""
    mine = _target(ctx, m.target)
    found = False
    for (kind, target, _), other in ctx.index.items():
        if kind != m.decl.qualified or other is m:
            continue
        theirs = _target(ctx, target)
        same_target = target == m.target
        if same_target or (mine is not None and theirs is not None and same_account(mine, theirs)):
            where = other.source()
            ctx.error(
                f"{m.decl.kind} is an account-wide setting and is declared twice for the same AWS account: "
                f"{m.doc.source(('metadata', 'name'))} (Target '{m.target}') and {where} (Target '{target}')",
                detail="declare it once, in one Target of the account (Targets are the same account when "
                "their aws.accountId matches, or, without accountId, region, profile and endpointUrl)",
            )
            found = True
    return found


def _target(ctx: ExpandContext, name: str | None) -> AwsTargetSpec | None:
    for (kind, _, tname), t in ctx.index.items():
        if kind == "fleetctl.Target" and tname == name:
            return spec_as(t, TargetSpec).aws
    return None


def _singleton(expand: ExpandFn) -> ExpandFn:
    def wrapped(ctx: ExpandContext, m: Manifest) -> Expanded:
        if _singleton_conflicts(ctx, m):
            return Expanded()
        return expand(ctx, m)

    return wrapped


def _whole(ctx: ExpandContext, m: Manifest) -> dict[str, Any]:
    """Every field, defaults included: a singleton is owned whole."""
    return m.spec.model_dump(mode="json")


def _expand_indexing(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = _whole(ctx, m)
    spec["customFields"] = sorted(spec["customFields"], key=lambda f: f["name"])
    return simple_desired(ctx, spec)


def _expand_logging(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = _whole(ctx, m)
    spec["levels"] = {level_key(t["targetType"], t["targetName"]): t["logLevel"] for t in spec["levels"]}
    return simple_desired(ctx, spec)


def _expand_events(ctx: ExpandContext, m: Manifest) -> Expanded:
    return simple_desired(ctx, {"enabled": sorted(set(spec_as(m, EventConfigurationsSpec).enabled))})


def _expand_audit(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = _whole(ctx, m)
    spec["enabledChecks"] = sorted(set(spec["enabledChecks"]))
    return simple_desired(ctx, spec)


def _with_dependencies(out: Expanded, deps: list[Address]) -> Expanded:
    out.resources = [
        dataclasses.replace(r, depends_on=tuple(sorted(set(r.depends_on) | set(deps)))) for r in out.resources
    ]
    return out


def _expand_scheduled(ctx: ExpandContext, m: Manifest) -> Expanded:
    scheduled = spec_as(m, ScheduledAuditSpec)
    spec = declared(scheduled)
    spec["targetCheckNames"] = sorted(set(scheduled.targetCheckNames))
    deps = [
        o.address
        for (kind, target, _), o in ctx.index.items()
        if kind == "aws.AccountAuditConfiguration" and target == m.target
    ]
    for (kind, target, _), audit in ctx.index.items():  # a scheduled check must be enabled for the account
        if kind == "aws.AccountAuditConfiguration" and target == m.target:
            off = sorted(
                set(scheduled.targetCheckNames) - set(spec_as(audit, AccountAuditConfigurationSpec).enabledChecks)
            )
            if off:
                ctx.error(
                    f"audit check(s) {', '.join(off)} are not enabled in AccountAuditConfiguration "
                    f"'{audit.name}': AWS refuses to schedule them",
                    "targetCheckNames",
                )
    return _with_dependencies(simple_desired(ctx, spec), deps)


def public_key_pem(text: str) -> str | None:
    """The PEM of a public key, normalised; None when `text` is not one (a private key is never accepted)."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(text.encode())
    except ValueError:
        return None
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _present(spec: dict[str, Any]) -> dict[str, Any]:
    """A named kind's fields without the unset optional ones (an absent value is not compared)."""
    return {k: v for k, v in spec.items() if v is not None}


def _expand_authorizer(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = _present(_whole(ctx, m))
    keys: dict[str, str] = {}
    for name, ref in spec_as(m, AuthorizerSpec).tokenSigningPublicKeys.items():
        text = ctx.read_public(ref, "tokenSigningPublicKeys", name)
        if text is None:
            continue
        if holds_private_key(text):
            ctx.error(
                f"token signing key '{name}' is a private key: declare the public key only (fleetctl never "
                "reads private keys)",
                "tokenSigningPublicKeys",
                name,
            )
            continue
        pem = public_key_pem(text)
        if pem is None:
            ctx.error(f"token signing key '{name}' is not a PEM public key", "tokenSigningPublicKeys", name)
            continue
        keys[name] = pem
    spec["tokenSigningPublicKeys"] = keys
    return simple_desired(ctx, spec)


def _expand_domain(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = _present(_whole(ctx, m))
    domain = spec_as(m, DomainConfigurationSpec)
    if domain.domainName and not domain.serverCertificateArns:
        ctx.error("a custom domainName needs serverCertificateArns (its ACM certificate)", "serverCertificateArns")
    if domain.allowAuthorizerOverride and not domain.authorizer:
        ctx.error("allowAuthorizerOverride needs an authorizer", "allowAuthorizerOverride")
    return simple_desired(ctx, spec)


def _expand_destination(ctx: ExpandContext, m: Manifest) -> Expanded:
    destination = spec_as(m, TopicRuleDestinationSpec)
    spec = declared(destination)
    spec.pop("confirmationWaitSeconds", None)
    spec["status"] = destination.status
    if destination.vpc is not None:
        spec["vpc"]["subnetIds"] = sorted(destination.vpc.subnetIds)
        spec["vpc"]["securityGroups"] = sorted(destination.vpc.securityGroups)
    return simple_desired(ctx, spec, inputs={"confirmationWaitSeconds": destination.confirmationWaitSeconds})


# ---------------------------------------------------------------------------------------------- refine, calls
def _owned_whole(c: Change) -> Any:
    """A singleton's change says what it is: never created nor deleted, one account-wide update."""
    return dataclasses.replace(
        c, reason=c.reason or OWNED_WHOLE, steps=c.steps or (f"update the {c.kind[4:]} ({OWNED_WHOLE})",)
    )


def _touched(c: Change, *keys: str) -> bool:
    return any(f.path == k or f.path.startswith(k + ".") for f in c.fields for k in keys)


def _indexing_calls(c: Change) -> Counter[str]:
    return Counter({"UpdateIndexingConfiguration": 1})


def _logging_calls(c: Change) -> Counter[str]:
    want, have = c.desired.get("levels", {}) or {}, c.actual.get("levels", {}) or {}
    return Counter(
        {
            "SetV2LoggingOptions": int(_touched(c, "roleArn", "defaultLogLevel", "disableAllLogs")),
            "SetV2LoggingLevel": sum(1 for k, v in want.items() if have.get(k) != v),
            "DeleteV2LoggingLevel": sum(1 for k in have if k not in want),
        }
    )


def _events_calls(c: Change) -> Counter[str]:
    return Counter({"UpdateEventConfigurations": 1})


def _audit_calls(c: Change) -> Counter[str]:
    return Counter({"UpdateAccountAuditConfiguration": 1})


def _crud(
    create: str, update: str, delete: str, *, disable: str | None = None, disabled: tuple[str, str] | None = None
) -> Callable[[Change], Counter[str]]:
    """Calls of a named kind; `disable`: the update call made before a delete while `disabled` (field, value) is
    not yet the state."""

    def calls(c: Change) -> Counter[str]:
        pre = Counter({disable: int(c.actual.get(disabled[0]) != disabled[1])}) if disable and disabled else Counter()
        if c.action is Action.CREATE:
            return Counter({create: 1})
        if c.action is Action.DELETE:
            return pre + Counter({delete: 1})
        if c.action is Action.REPLACE:
            return pre + Counter({delete: 1, create: 1})
        return Counter({update: int(bool([f for f in c.fields if f.path != "managedBy"]))}) + Counter(
            {"TagResource": int(_touched(c, "managedBy"))}
        )

    return calls


def _destination_calls(c: Change) -> Counter[str]:
    base = _crud(
        "CreateTopicRuleDestination",
        "UpdateTopicRuleDestination",
        "DeleteTopicRuleDestination",
        disable="UpdateTopicRuleDestination",
        disabled=("status", "DISABLED"),
    )(c)
    if (
        c.action in (Action.CREATE, Action.REPLACE)
        and c.desired.get("vpc") is None
        and c.desired.get("status") == "DISABLED"
    ):
        base["UpdateTopicRuleDestination"] += 1  # confirmed, then disabled as declared
    if c.action is Action.UPDATE and c.actual.get("status") == "IN_PROGRESS":
        base["UpdateTopicRuleDestination"] = 0  # waiting for the confirmation reads only
    return base


def _disable_first(what: str, field: str, value: str, delete: str) -> Any:
    def refine(c: Change) -> Any:
        disable = (
            [f"set the {what} {value} (AWS deletes only a {value} {what})"] if c.actual.get(field) != value else []
        )
        if c.action is Action.DELETE:
            return dataclasses.replace(c, steps=tuple(disable + [delete]))
        if c.action is Action.REPLACE:
            return dataclasses.replace(c, steps=tuple(disable + [delete, f"create the {what} with the new settings"]))
        return c

    return refine


def _destination_refine(c: Change) -> Any:
    c = _disable_first("destination", "status", "DISABLED", "delete the topic rule destination")(c)
    if c.action in (Action.CREATE, Action.REPLACE) and c.desired.get("http"):
        steps = () if c.action is Action.CREATE else c.steps
        return dataclasses.replace(
            c,
            steps=steps
            + (
                "create the destination (IN_PROGRESS: AWS sends a confirmation token to the confirmation URL)",
                "wait until the endpoint confirms it (ConfirmTopicRuleDestination with the token): ENABLED; rules "
                "posting under it are applied after that",
            ),
        )
    if c.action is Action.UPDATE and c.actual.get("status") == "IN_PROGRESS" and c.desired.get("status") == "ENABLED":
        return dataclasses.replace(
            c,
            reason="the destination awaits its endpoint's confirmation",
            steps=(
                "wait until the endpoint confirms the destination "
                "(ConfirmTopicRuleDestination with the token AWS sent it)",
            ),
        )
    return c


# ---------------------------------------------------------------------------------------------- declarations
# ranks: account settings first (rank 1-4); authorizers before the domain configurations that use them; topic
# rule destinations before topic rules (70); scheduled audits after the audit configuration.
aws(
    "IndexingConfiguration",
    IndexingConfigurationSpec,
    1,
    _singleton(_expand_indexing),
    calls=_indexing_calls,
    refine=_owned_whole,
    lists=(ListKey("customFields", "key", "name"),),
    always_managed=tuple(IndexingConfigurationSpec.model_fields),
)
aws(
    "LoggingOptions",
    LoggingOptionsSpec,
    2,
    _singleton(_expand_logging),
    calls=_logging_calls,
    refine=_owned_whole,
    always_managed=tuple(LoggingOptionsSpec.model_fields),
)
aws(
    "EventConfigurations",
    EventConfigurationsSpec,
    3,
    _singleton(_expand_events),
    calls=_events_calls,
    refine=_owned_whole,
    lists=(ListKey("enabled"),),
    always_managed=("enabled",),
)
aws(
    "AccountAuditConfiguration",
    AccountAuditConfigurationSpec,
    4,
    _singleton(_expand_audit),
    calls=_audit_calls,
    refine=_owned_whole,
    lists=(ListKey("enabledChecks"),),
    always_managed=tuple(AccountAuditConfigurationSpec.model_fields),
    extra={"checks": AUDIT_CHECKS},
)  # every Device Defender audit check (the Needs-attention check reads it here)
aws(
    "ScheduledAudit",
    ScheduledAuditSpec,
    8,
    _expand_scheduled,
    calls=_crud("CreateScheduledAudit", "UpdateScheduledAudit", "DeleteScheduledAudit"),
    lists=(ListKey("targetCheckNames"),),
    always_managed=("frequency",),
)
aws(
    "Authorizer",
    AuthorizerSpec,
    12,
    _expand_authorizer,
    immutable=("signingDisabled",),
    calls=_crud(
        "CreateAuthorizer",
        "UpdateAuthorizer",
        "DeleteAuthorizer",
        disable="UpdateAuthorizer",
        disabled=("status", "INACTIVE"),
    ),
    refine=_disable_first("authorizer", "status", "INACTIVE", "delete the authorizer"),
    always_managed=("status", "signingDisabled", "enableCachingForHttp", "tokenSigningPublicKeys"),
)
aws(
    "DomainConfiguration",
    DomainConfigurationSpec,
    14,
    _expand_domain,
    immutable=("domainName", "serverCertificateArns", "validationCertificateArn", "serviceType"),
    calls=_crud(
        "CreateDomainConfiguration",
        "UpdateDomainConfiguration",
        "DeleteDomainConfiguration",
        disable="UpdateDomainConfiguration",
        disabled=("status", "DISABLED"),
    ),
    refine=_disable_first("domain configuration", "status", "DISABLED", "delete the domain configuration"),
    references=(Ref("authorizer", "aws.Authorizer"),),
    lists=(ListKey("serverCertificateArns"),),
    always_managed=("serviceType", "allowAuthorizerOverride", "tlsPolicy", "status"),
)
aws(
    "TopicRuleDestination",
    TopicRuleDestinationSpec,
    65,
    _expand_destination,
    immutable=("http", "vpc"),
    calls=_destination_calls,
    refine=_destination_refine,
    lists=(ListKey("vpc.subnetIds"), ListKey("vpc.securityGroups")),
    always_managed=("status",),
)

NAME_RE_DESTINATION = re.compile(r"[^a-z0-9-]+")


def destination_name(url: str) -> str:
    """A fleetctl name for an undeclared destination (import): its URL's host and path."""
    body = url.split("://", 1)[-1].lower()
    return NAME_RE_DESTINATION.sub("-", body).strip("-")[:63] or "destination"
