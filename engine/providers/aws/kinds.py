"""aws.fleetctl.io/v1 kinds: spec models and each kind's rules, declared once.

No boto3 here: validating a manifest must not import an SDK. Each `expand` turns a validated spec into the
canonical shape the AWS provider reads back (names for references, canonical JSON for documents, the
certificate id computed from the PEM), so the diff is a plain comparison.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from engine.kinds import KindDecl, ListKey, Ref, register
from engine.manifest.expand import ExpandContext, Expanded, canonical, declared, simple_desired
from engine.manifest.specs import spec_as
from engine.manifest.types import Name, Pem, Status, Strict
from engine.manifest.validation import Manifest
from engine.model import Action, Change
from engine.pki import CertInfo, issued_by
from engine.providers.aws.planning import CALLS, MANAGED_FIELD, REFINE
from engine.providers.aws.references import named_roles, role_names, rule_destinations

GROUP = "aws.fleetctl.io"
ATTR_KEY = r"^[a-zA-Z0-9_.,@/:#-]{1,128}$"
MARKER_KEY = "managed-by"  # the ownership marker fleetctl writes (thing/group attribute, tag)
MARKER_VALUE = "fleetctl"
# Adoption (`fleetctl import --adopt`): a manifest annotated `fleetctl.io/adopt: "true"` declares that the
# resource must carry the ownership marker. Its desired state then holds MANAGED_FIELD, the provider reports
# the marker under that field for such resources, and the plan shows one reviewable update that adds it.
ADOPT_ANNOTATION = "fleetctl.io/adopt"

ExpandFn = Callable[[ExpandContext, Manifest], Expanded]  # a kind's expand (KindDecl.expand)


def json_doc(value: Any) -> Any:
    """A document declared as a JSON string is read as JSON (policies, templates, ServiceRole policies)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    return value


class ThingSpec(Strict):
    thingType: Name | None = Field(None, description="ThingType name")
    attributes: dict[str, str] = Field(default_factory=dict, description="thing attributes (the whole map is managed)")
    groups: list[Name] = Field(default_factory=list, description="static ThingGroup names")
    principals: list[Name] = Field(default_factory=list, description="Certificate names attached to this thing")
    billingGroup: Name | None = Field(None, description="the BillingGroup the thing belongs to (at most one)")

    @field_validator("attributes")
    @classmethod
    def _attrs(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not re.match(ATTR_KEY, key):
                raise ValueError(f"attribute name '{key}' must match {ATTR_KEY}")
            if key == MARKER_KEY:
                raise ValueError(f"attribute '{MARKER_KEY}' is fleetctl's ownership marker and cannot be declared")
            if len(value) > 800:
                raise ValueError(f"attribute '{key}' is longer than 800 characters")
        return v


class ThingTypeSpec(Strict):
    description: str | None = Field(None, max_length=2028)
    searchableAttributes: list[str] = Field(default_factory=list, max_length=3)
    deprecated: bool = False


class ThingGroupSpec(Strict):
    parent: Name | None = Field(None, description="parent ThingGroup (immutable: a change replaces the group)")
    description: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    policies: list[Name] = Field(default_factory=list, description="Policies attached to the group")


class PolicySpec(Strict):
    document: dict[str, Any] = Field(description="policy document: YAML, or a JSON string")
    keepVersions: int = Field(5, ge=1, le=5, description="policy versions to retain (AWS allows at most 5)")

    _doc = field_validator("document", mode="before")(classmethod(lambda cls, v: json_doc(v)))

    @field_validator("document")
    @classmethod
    def _size(cls, v: dict[str, Any]) -> dict[str, Any]:
        compact = re.sub(r"\s", "", json.dumps(v))
        if len(compact) > 2048:
            raise ValueError(f"policy document is {len(compact)} characters without whitespace; AWS allows 2048")
        if "Statement" not in v:
            raise ValueError("policy document has no 'Statement'")
        return v


class RegistrationConfig(Strict):
    templateName: Name | None = Field(None, description="ProvisioningTemplate for JITP")
    templateBody: dict[str, Any] | None = None
    roleArn: str | None = None

    _body = field_validator("templateBody", mode="before")(classmethod(lambda cls, v: json_doc(v)))


class CACertificateSpec(Strict):
    certificatePem: Pem
    verificationCertificatePem: Pem | None = Field(
        None, description="made outside fleetctl from the registration code (proof of possession)"
    )
    status: Literal["ACTIVE", "INACTIVE"] = "ACTIVE"
    autoRegistration: Literal["ENABLE", "DISABLE"] = "DISABLE"
    certificateMode: Literal["DEFAULT", "SNI_ONLY"] = "DEFAULT"
    registrationConfig: RegistrationConfig | None = None


class CertificateSpec(Strict):
    certificatePem: Pem
    caCertificate: Name | None = Field(None, description="CACertificate that issued it")
    status: Status = "ACTIVE"
    policies: list[Name] = Field(default_factory=list, description="Policies attached to the certificate")


class TopicRuleSpec(Strict):
    sql: str
    description: str | None = None
    awsIotSqlVersion: Literal["2015-10-08", "2016-03-23", "beta"] = "2016-03-23"
    ruleDisabled: bool = False
    actions: list[dict[str, Any]] = Field(default_factory=list, description="AWS rule actions, e.g. {dynamoDB: {...}}")
    errorAction: dict[str, Any] | None = None


class ProvisioningTemplateSpec(Strict):
    templateBody: dict[str, Any]
    provisioningRoleArn: str
    description: str | None = None
    enabled: bool = True
    type: Literal["FLEET_PROVISIONING", "JITP"] = "FLEET_PROVISIONING"
    preProvisioningHook: dict[str, Any] | None = None

    _body = field_validator("templateBody", mode="before")(classmethod(lambda cls, v: json_doc(v)))


def _sorted_lists(spec: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        if name in spec:
            spec[name] = sorted(set(spec[name]))
    return spec


def _expand_thing(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = spec_as(m, ThingSpec)
    if spec.thingType is None and len(spec.attributes) > 2:
        ctx.error(
            "a thing without a thingType may have at most 3 attributes on AWS, and fleetctl's ownership "
            "marker uses one: declare at most 2, or give the thing a thingType (50 attributes)",
            "attributes",
        )
    ids = {}
    for name in spec.principals:
        cert = ctx.lookup("aws.Certificate", name)
        info = _read_cert(ctx, spec_as(cert, CertificateSpec).certificatePem, "principals") if cert else None
        if info:
            ids[name] = info.cert_id
    return simple_desired(
        ctx, _sorted_lists(declared(spec), "groups", "principals"), inputs={"certificateIds": ids} if ids else None
    )


def _expand_thing_type(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = declared(m.spec)
    return simple_desired(ctx, _sorted_lists(spec, "searchableAttributes"))


def _expand_thing_group(ctx: ExpandContext, m: Manifest) -> Expanded:
    return simple_desired(ctx, _sorted_lists(declared(m.spec), "policies"))


def _expand_policy(ctx: ExpandContext, m: Manifest) -> Expanded:
    policy = spec_as(m, PolicySpec)
    spec = declared(policy)
    spec["document"] = canonical(policy.document)
    spec["keepVersions"] = policy.keepVersions  # retention is desired state: more versions is a diff
    return simple_desired(ctx, spec)


def _read_cert(ctx: ExpandContext, ref: Any, field: str) -> CertInfo | None:
    return ctx.read_cert(ref, field)


def _expand_ca(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = spec_as(m, CACertificateSpec)
    info, vinfo = ctx.read_ca_pair(
        spec.certificatePem,
        spec.verificationCertificatePem,
        "make it from the registration code with the CA's key, outside fleetctl",
    )
    out = declared(spec)
    out.pop("certificatePem", None)
    out.pop("verificationCertificatePem", None)
    out.pop("certificateMode", None)
    inputs: dict[str, Any] = {"certificateMode": spec.certificateMode}
    if info:
        out["certificateId"] = info.cert_id
        inputs["certificatePem"] = info.pem
    inputs["verificationCertificatePem"] = vinfo.pem if vinfo else None
    return simple_desired(ctx, out, inputs=inputs)


def _expand_certificate(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec = spec_as(m, CertificateSpec)
    info = _read_cert(ctx, spec.certificatePem, "certificatePem")
    out = _sorted_lists(declared(spec), "policies")
    out.pop("certificatePem", None)
    inputs: dict[str, Any] = {}
    if info:
        out["certificateId"] = info.cert_id
        inputs["certificatePem"] = info.pem
        inputs["commonName"] = info.subject_cn
        if spec.caCertificate:
            ca = ctx.lookup("aws.CACertificate", spec.caCertificate)
            ca_info = _read_cert(ctx, spec_as(ca, CACertificateSpec).certificatePem, "caCertificate") if ca else None
            if ca_info:
                inputs["caCertificatePem"] = ca_info.pem
                if not issued_by(info.pem, ca_info.pem):
                    ctx.error(
                        f"certificate is not issued by CACertificate '{spec.caCertificate}'",
                        "caCertificate",
                        detail=f"its issuer is '{info.issuer}'",
                    )
    return simple_desired(ctx, out, inputs=inputs)


def _expand_topic_rule(ctx: ExpandContext, m: Manifest) -> Expanded:
    if not re.match(r"^[a-zA-Z0-9_]+$", m.name):
        ctx.error("topic rule names may hold only letters, digits and '_' (AWS rule name)")
    spec = named_roles(canonical(declared(m.spec)))  # a ServiceRole by ARN or by name: its name
    deps = []
    for i, action in enumerate(spec.get("actions", [])):  # a roleArn naming a ServiceRole: a dependency edge
        for name in role_names(action):
            role = ctx.lookup("aws.ServiceRole", name)
            if role is None:
                ctx.error(f"roleArn '{name}' is neither an ARN nor a ServiceRole of this target", "actions", i)
            else:
                deps.append(role.address)
    for name in role_names(spec.get("errorAction")):
        role = ctx.lookup("aws.ServiceRole", name)
        if role is None:
            ctx.error(f"roleArn '{name}' is neither an ARN nor a ServiceRole of this target", "errorAction")
        else:
            deps.append(role.address)
    deps += rule_destinations(ctx, spec_as(m, TopicRuleSpec).actions)
    out = simple_desired(ctx, spec)
    if deps:
        out.resources = [
            dataclasses.replace(r, depends_on=tuple(sorted(set(r.depends_on) | set(deps)))) for r in out.resources
        ]
    return out


def _expand_template(ctx: ExpandContext, m: Manifest) -> Expanded:
    template = spec_as(m, ProvisioningTemplateSpec)
    spec = declared(template)
    spec["templateBody"] = canonical(template.templateBody)
    return simple_desired(ctx, spec)


def _adoptable(kind: str, expand: ExpandFn) -> ExpandFn:
    """Wrap a kind's expand: the adopt annotation adds the ownership marker to the desired state."""

    def wrapped(ctx: ExpandContext, m: Manifest) -> Expanded:
        out = expand(ctx, m)
        flag = m.envelope.metadata.annotations.get(ADOPT_ANNOTATION)
        if flag in (None, "false"):
            return out
        if flag != "true":
            ctx.error(f'annotation {ADOPT_ANNOTATION} must be "true" or "false", not {flag!r}')
        elif kind == "Certificate":
            ctx.error(
                f"a Certificate carries no ownership marker of its own (it is managed when a managed Thing "
                f"holds it): remove {ADOPT_ANNOTATION} here and adopt the Thing"
            )
        else:
            out.resources = [
                dataclasses.replace(r, spec={**r.spec, MANAGED_FIELD: MARKER_VALUE}) for r in out.resources
            ]
        return out

    return wrapped


def _adoption_steps(kind: str, refine: Any) -> Any:
    """Wrap a kind's refine: an update that adds the ownership marker says so, with the step it takes."""
    how = "attribute" if kind in ("Thing", "ThingGroup") else "tag"

    def wrapped(c: Any) -> Any:
        result = refine(c) if refine else c
        if (
            isinstance(result, Change)
            and result.action is Action.UPDATE
            and any(f.path == MANAGED_FIELD for f in result.fields)
        ):
            result = dataclasses.replace(
                result,
                reason=result.reason or f"adopt: the manifest says {ADOPT_ANNOTATION}",
                steps=result.steps + (f"add the ownership marker {how} {MARKER_KEY}={MARKER_VALUE}",),
            )
        return result

    return wrapped


# AWS IoT's own name rules (API reference: CreateThing, CreateThingType, CreateThingGroup, CreatePolicy,
# CreateTopicRule, CreateProvisioningTemplate). A name becomes a URL path segment, a state key and, for devices, an
# artifact file name: it is checked here, at metadata.name, before any of that. Certificates and CA certificates
# are addressed by their id in AWS; their metadata.name is fleetctl's own (NAME_RE).
AWS_NAME_RULES: dict[str, tuple[str, str]] = {
    "Thing": (r"^[a-zA-Z0-9:_-]{1,128}$", "1-128 of letters, digits, ':', '_' and '-'"),
    "ThingType": (r"^[a-zA-Z0-9:_-]{1,128}$", "1-128 of letters, digits, ':', '_' and '-'"),
    "ThingGroup": (r"^[a-zA-Z0-9:_-]{1,128}$", "1-128 of letters, digits, ':', '_' and '-'"),
    "Policy": (r"^[\w+=,.@-]{1,128}$", "1-128 of letters, digits and '_+=,.@-'"),
    "TopicRule": (r"^[a-zA-Z0-9_]{1,128}$", "1-128 of letters, digits and '_'"),
    "ProvisioningTemplate": (r"^[0-9A-Za-z_-]{1,36}$", "1-36 of letters, digits, '_' and '-'"),
}


def aws_name_problem(kind: str, name: str) -> str | None:
    """Why `name` is not a valid AWS IoT name for `kind`, or None."""
    rule = AWS_NAME_RULES.get(kind)
    if rule is None or re.match(rule[0], name):
        return None
    return f"'{name}' is not a valid AWS IoT {kind} name: {rule[1]}"


def _named(kind: str, expand: ExpandFn) -> ExpandFn:
    """Wrap a kind's expand: a name AWS would refuse is an error at metadata.name, and nothing is planned for it."""

    def wrapped(ctx: ExpandContext, m: Manifest) -> Expanded:
        problem = aws_name_problem(kind, m.name)
        if problem is not None:
            ctx.error(problem)
            return Expanded()
        return expand(ctx, m)

    return wrapped


def aws(
    kind: str, model: type[BaseModel], rank: int, expand: ExpandFn, *, calls: Any = None, refine: Any = None, **kw: Any
) -> KindDecl:
    """Register an aws.fleetctl.io kind; `calls`/`refine` default to planning.py's tables (kinds declared in
    other modules, engine/providers/aws/kinds_access.py, pass their own)."""
    return register(
        KindDecl(
            GROUP,
            kind,
            "aws",
            model,
            rank=rank,
            expand=_named(kind, _adoptable(kind, expand)),
            refine=_adoption_steps(kind, refine or REFINE.get(kind)),
            calls=calls or CALLS[kind],
            **kw,
        )
    )


# How the diff matches list elements (engine/diff.py). IAM-style policy statements are identified by Sid (else by
# content) and their Action/Resource/Condition value lists are sets; a rule's actions by their type; the name
# lists (principals, groups, policies, searchable attributes) are sets, sorted on both sides already.
STATEMENT_LISTS = (
    ListKey("document.Statement", "key", "Sid"),
    *(ListKey(f"document.Statement[].{k}") for k in ("Action", "NotAction", "Resource", "NotResource", "Principal")),
    ListKey("document.Statement[].Condition.*.*"),
)

aws(
    "ProvisioningTemplate",
    ProvisioningTemplateSpec,
    5,
    _expand_template,
    immutable=("type",),
    always_managed=("enabled", "type"),
)
aws(
    "CACertificate",
    CACertificateSpec,
    10,
    _expand_ca,
    immutable=("certificateId",),
    always_managed=("status", "autoRegistration"),
    references=(Ref("registrationConfig.templateName", "aws.ProvisioningTemplate"),),
)
aws("Policy", PolicySpec, 20, _expand_policy, lists=STATEMENT_LISTS)
aws(
    "Certificate",
    CertificateSpec,
    30,
    _expand_certificate,
    immutable=("certificateId",),
    always_managed=("status",),
    lists=(ListKey("policies"),),
    references=(Ref("caCertificate", "aws.CACertificate"), Ref("policies", "aws.Policy", many=True)),
)
aws(
    "ThingType",
    ThingTypeSpec,
    40,
    _expand_thing_type,
    immutable=("description", "searchableAttributes"),
    lists=(ListKey("searchableAttributes"),),
)
aws(
    "ThingGroup",
    ThingGroupSpec,
    50,
    _expand_thing_group,
    immutable=("parent",),
    always_managed=("parent",),
    lists=(ListKey("policies"),),
    references=(Ref("parent", "aws.ThingGroup"), Ref("policies", "aws.Policy", many=True)),
)
aws(
    "Thing",
    ThingSpec,
    60,
    _expand_thing,
    always_managed=("thingType",),
    lists=(ListKey("groups"), ListKey("principals")),
    references=(
        Ref("thingType", "aws.ThingType"),
        Ref("groups", "aws.ThingGroup", many=True),
        Ref("principals", "aws.Certificate", many=True),
        Ref("billingGroup", "aws.BillingGroup"),
    ),
)
aws(
    "TopicRule",
    TopicRuleSpec,
    70,
    _expand_topic_rule,
    always_managed=("awsIotSqlVersion", "ruleDisabled"),
    lists=(ListKey("actions", "type"),),
)
