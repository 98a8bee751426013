"""The lint rules, each declared once with its id, level, summary and fix hint.

Sources of the rules: the u-blox application note's demo policy (`iot:*` on `*`, "must ONLY be used for the
example ... Do NOT use it in production") and its production policy scoped with
`${iot:Connection.Thing.ThingName}`; the SpringPark how-to (one credential per client: with a shared one, the
last connection wins); AWS and Azure rules on certificates, DPS registration ids, device ids and regional
endpoints. Rules read raw documents generically (kind names and spec fields), so the Azure kinds
(`azure.fleetctl.io/v1` Device, Enrollment, EnrollmentGroup) are covered whether or not they are registered.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from engine.lint import Hit, Level, LintContext, ManifestDoc, PathT, rule, walk
from engine.pki import issued_by
from engine.providers.azure.kinds import DEVICE_ID, REGISTRATION_ID  # the service's id rules, declared once

AWS = "aws.fleetctl.io"
AZURE = "azure.fleetctl.io"
DEVICE = "device.fleetctl.io"
CORE = "fleetctl.io"

THING_VARIABLE = "${iot:Connection.Thing."
DEVICE_ACTIONS = {
    "iot:connect",
    "iot:publish",
    "iot:subscribe",
    "iot:receive",
    "iot:retainpublish",
    "iot:getretainedmessage",
    "iot:getthingshadow",
    "iot:updatethingshadow",
    "iot:deletethingshadow",
}
WILDCARD_RESOURCE = re.compile(r"^(\*|arn:aws:iot:[^:]*:[^:]*:(\*|(client|topic|topicfilter|thing|thinggroup)/\*))$")
IOT_ARN = re.compile(r"^arn:aws[a-z-]*:iot:([^:]*):([^:]*):")
IOT_HOST = re.compile(
    r"(?<![A-Za-z0-9-])(?:[a-z0-9-]+\.)*iot\.([a-z]{2}(?:-gov)?-[a-z]+-\d)\.amazonaws\.com(?:\.cn)?", re.IGNORECASE
)
# Azure's documented formats (DPS: registration and enrollment group ids; IoT Hub: device ids)


# ------------------------------------------------------------------------------------------- policies
def _statements(doc: ManifestDoc) -> Iterator[tuple[PathT, dict[str, Any]]]:
    document = doc.spec.get("document")
    if isinstance(document, str):  # a JSON string: positions stop at the document field
        import json

        try:
            document = json.loads(document)
        except ValueError:
            return
    statements = document.get("Statement") if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    for i, st in enumerate(statements if isinstance(statements, list) else []):
        if isinstance(st, dict) and st.get("Effect") == "Allow":
            yield ("spec", "document", "Statement", i), st


def _values(st: dict[str, Any], key: str, base: PathT) -> list[tuple[PathT, str]]:
    value = st.get(key)
    if isinstance(value, str):
        return [(base + (key,), value)]
    if isinstance(value, list):
        return [(base + (key, i), v) for i, v in enumerate(value) if isinstance(v, str)]
    return []


def _policy_docs(ctx: LintContext) -> Iterator[tuple[ManifestDoc, PathT, dict[str, Any]]]:
    for doc in ctx.of(AWS, "Policy"):
        for base, st in _statements(doc):
            yield doc, base, st


def _wildcards(ctx: LintContext, key: str, is_wild: Any, everything: str) -> Iterator[Hit]:
    """Allow statements whose `key` (Action or Resource) is a wildcard, or that use Not<key>."""
    for doc, base, st in _policy_docs(ctx):
        where = f"policy '{doc.name}' statement {base[-1]}"
        if f"Not{key}" in st:
            yield Hit(doc, base + (f"Not{key}",), f"{where} {everything} but a few (Not{key} with Allow)")
        for path, value in _values(st, key, base):
            if is_wild(value):
                yield Hit(doc, path, f"{where} {everything} ('{value}')")


@rule(
    "FL001",
    "policy-wildcard-action",
    Level.ERROR,
    security_severity=9.0,
    summary="IoT policy allows every action ('iot:*', '*' or NotAction)",
    hint="list only the actions the devices need (iot:Connect, iot:Publish, iot:Subscribe, iot:Receive); "
    "the u-blox note's 'iot:*' policy is for a demo only",
)
def policy_wildcard_action(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    return _wildcards(ctx, "Action", lambda a: a.lower() in ("*", "iot:*"), "allows every IoT action")


@rule(
    "FL002",
    "policy-wildcard-resource",
    Level.ERROR,
    security_severity=8.0,
    summary="IoT policy grants on every resource ('*', client/*, topic/*, ...)",
    hint="scope each resource to the device: arn:aws:iot:REGION:ACCOUNT:client/${iot:Connection.Thing.ThingName}, "
    "topic/.../${iot:Connection.Thing.ThingName}/*",
)
def policy_wildcard_resource(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    return _wildcards(ctx, "Resource", WILDCARD_RESOURCE.match, "grants on every resource")


@rule(
    "FL003",
    "policy-not-thing-scoped",
    Level.WARNING,
    security_severity=6.0,
    summary="device actions on resources not scoped with ${iot:Connection.Thing.ThingName}",
    hint="put ${iot:Connection.Thing.ThingName} in the client id and topics, so a device can use only its own; "
    "suppress with the annotation fleetctl.io/lint-ignore: FL003 for a deliberately shared topic",
)
def policy_not_thing_scoped(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    for doc, base, st in _policy_docs(ctx):
        actions = {a.lower() for _, a in _values(st, "Action", base)}
        if not actions & DEVICE_ACTIONS:
            continue
        for path, resource in _values(st, "Resource", base):
            if (
                not WILDCARD_RESOURCE.match(resource)
                and THING_VARIABLE not in resource
                and not _names_its_only_devices(ctx, doc, resource)
            ):
                yield Hit(
                    doc,
                    path,
                    f"policy '{doc.name}' statement {base[-1]} lets every device use "
                    f"'{resource}' (no ${{iot:Connection.Thing.ThingName}} in it)",
                )


def _names_its_only_devices(ctx: LintContext, doc: ManifestDoc, resource: str) -> bool:
    """A per-device policy naming its device literally (`topic/dt/dev-01/*` on dev-01's certificate only, as
    imported from an account) is scoped: true when the policy is in effect for declared things only and the
    resource names each of them. FL011 decides the effective case for every policy."""
    if not re.search(r"[A-Za-z0-9]", resource.rsplit(":", 1)[-1]):
        return False
    users = _policy_users(ctx).get((doc.target, doc.name))
    if not users:
        return False
    from engine.authz.policy import own_name

    return all(own_name(name).search(resource) for name in users)


def _policy_users(ctx: LintContext) -> dict[tuple[str | None, str], set[str]]:
    """Policy → the things it is in effect for (certificate and inherited group policies), computed once."""
    if "authz.policy-users" not in ctx.cache:
        users: dict[tuple[str | None, str], set[str]] = defaultdict(set)
        fleet = ctx.authz
        for thing in fleet.things.values():
            for conn in fleet.connections(thing):
                for policy in conn.policies:
                    users[(thing.target, policy.name)].add(thing.name)
        ctx.cache["authz.policy-users"] = users
    known: dict[tuple[str | None, str], set[str]] = ctx.cache["authz.policy-users"]
    return known


@rule(
    "FL010",
    "policy-arn-elsewhere",
    Level.WARNING,
    security_severity=4.0,
    summary="IoT policy resource ARN in another region or account than its Target",
    hint="use the Target's region (and account): a policy copied from an example (us-west-2, 123456789012) "
    "grants nothing where the devices are",
)
def policy_arn_elsewhere(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    for doc, base, st in _policy_docs(ctx):
        region, account = ctx.aws_region(doc.target), ctx.aws_account(doc.target)
        for path, resource in _values(st, "Resource", base):
            m = IOT_ARN.match(resource)
            if not m:
                continue
            if region and m.group(1) not in ("*", region):
                yield Hit(
                    doc,
                    path,
                    f"policy '{doc.name}' names region {m.group(1)} but its target '{doc.target}' is in {region}",
                )
            elif account and m.group(2) not in ("*", account):
                yield Hit(
                    doc,
                    path,
                    f"policy '{doc.name}' names account {m.group(2)} but its target "
                    f"'{doc.target}' is account {account}",
                )


# ---------------------------------------------------------------------------------------- credentials
def _credential_refs(ctx: LintContext, doc: ManifestDoc) -> Iterator[tuple[PathT, str, str]]:
    """(field, identity, label) of each credential a device-like document uses. The identity is what the
    cloud authenticates: a certificate's sha256 (AWS) or SHA-1 thumbprint (Azure), or a secret's reference."""
    if doc.is_(AWS, "Thing"):
        principals = doc.spec.get("principals")
        for i, name in enumerate(principals if isinstance(principals, list) else []):
            cert = ctx.find(AWS, "Certificate", str(name), doc.target)
            info = ctx.certificate(cert, cert.spec.get("certificatePem")) if cert else None
            yield (
                ("spec", "principals", i),
                f"cert:{info.sha1}" if info else f"name:{doc.target}/{name}",
                f"certificate '{name}'",
            )
        return
    for section in ("authentication", "attestation"):
        value = doc.spec.get(section)
        if value is None:
            continue
        for path, item in walk(value, ("spec", section)):
            key = path[-1] if isinstance(path[-1], str) else ""
            if key.lower().endswith("thumbprint") and isinstance(item, str) and item:
                yield path, f"cert:{item.upper()}", f"thumbprint {item}"
            elif (
                isinstance(item, dict)
                and len(item) == 1
                and next(iter(item)) in ("env", "secretRef")
                and "key" in key.lower()
            ):
                source, ref = next(iter(item.items()))
                yield path, f"secret:{source}:{ref}", f"key {{{source}: {ref}}}"
            elif "pem" in key.lower():
                info = ctx.certificate(doc, item)
                if info is not None and not info.is_ca:
                    yield path, f"cert:{info.sha1}", f"certificate CN={info.subject_cn}"


def _device_id_of(doc: ManifestDoc) -> str | None:
    """Which device a document stands for: a Thing; an IoT Hub device; a DPS individual enrollment (the device
    it provisions: its deviceId, else its registration id), so a Device and its own enrollment are one device."""
    if doc.is_(AWS, "Thing"):
        return f"Thing {doc.name}"
    if doc.is_(AZURE, "Device"):
        return f"device {_device_id(doc)[1]}"
    if doc.is_(AZURE, "Enrollment"):
        device = doc.spec.get("deviceId")
        return f"device {device if isinstance(device, str) else _registration_id(doc)[1]}"
    return None


@rule(
    "FL004",
    "shared-credential",
    Level.ERROR,
    security_severity=8.0,
    summary="one credential (certificate, thumbprint or key) used by several devices",
    hint="give every device its own certificate or key: with a shared one, the last connection wins "
    "(SpringPark how-to) and revoking it cuts off every device that holds it",
)
def shared_credential(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    users: dict[str, dict[str, list[tuple[ManifestDoc, PathT, str]]]] = defaultdict(lambda: defaultdict(list))
    for doc in ctx.docs:
        device = _device_id_of(doc)
        if device is None:
            continue
        for path, identity, label in _credential_refs(ctx, doc):
            users[identity][device].append((doc, path, label))
    for devices in users.values():
        if len(devices) < 2:
            continue
        names = ", ".join(sorted(devices))
        for holders in devices.values():
            for doc, path, label in holders:
                yield Hit(doc, path, f"{label} is used by {len(devices)} devices ({names})")
    declared: dict[str, ManifestDoc] = {}
    for doc in ctx.of(AWS, "Certificate"):
        info = ctx.certificate(doc, doc.spec.get("certificatePem"))
        if info is None:
            continue
        first = declared.setdefault(info.cert_id, doc)
        if first is not doc:
            yield Hit(
                doc,
                ("spec", "certificatePem"),
                f"certificate '{doc.name}' is the same certificate as "
                f"'{first.name}' ({first.source(('metadata', 'name'))})",
            )


# --------------------------------------------------------------------------------------- certificates
@rule(
    "FL005",
    "certificate-expiry",
    Level.WARNING,
    security_severity=7.0,
    days=30,
    summary="CA or device certificate expired or expiring within N days (option: days, default 30)",
    hint="issue a new certificate, declare it beside the old one, move the devices over, then retire the old one",
)
def certificate_expiry(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    days = int(options["days"])
    for doc in ctx.docs:
        for pem in ctx.certificates(doc):
            left = pem.info.not_after - ctx.now
            what = "CA certificate" if pem.info.is_ca else "certificate"
            when = pem.info.not_after.strftime("%Y-%m-%d")
            if left.total_seconds() <= 0:
                yield Hit(doc, pem.path, f"{what} CN={pem.info.subject_cn} expired on {when}", Level.ERROR)
            elif left.days < days:
                yield Hit(
                    doc,
                    pem.path,
                    f"{what} CN={pem.info.subject_cn} expires on {when} (in {left.days} day(s); threshold {days})",
                )


def _declared_cas(ctx: LintContext, target: str | None) -> list[tuple[ManifestDoc, Any]]:
    out = []
    for doc in ctx.docs:
        if doc.target != target or doc.group not in (AWS, AZURE):
            continue
        for pem in ctx.certificates(doc):
            if pem.info.is_ca:
                out.append((doc, pem.info))
    return out


@rule(
    "FL006",
    "certificate-issuer-undeclared",
    Level.WARNING,
    security_severity=6.0,
    summary="device certificate not issued by a CA the fleet declares (or not by the one it names)",
    hint="declare the issuing CA (aws CACertificate, azure HubCertificate or an EnrollmentGroup's CA) and "
    "reference it; a certificate from an unknown issuer cannot be rotated or revoked through the fleet",
)
def certificate_issuer(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    for doc in ctx.docs:
        if doc.group not in (AWS, AZURE):
            continue
        for pem in ctx.certificates(doc):
            info = pem.info
            if info.is_ca or info.subject == info.issuer:  # CAs, and self-signed (thumbprint) devices
                continue
            named = doc.spec.get("caCertificate") if doc.is_(AWS, "Certificate") else None
            if isinstance(named, str):
                ca = ctx.find(AWS, "CACertificate", named, doc.target)
                ca_info = ctx.certificate(ca, ca.spec.get("certificatePem")) if ca else None
                if ca_info is not None and not issued_by(info.pem, ca_info.pem):
                    yield Hit(
                        doc,
                        ("spec", "caCertificate"),
                        f"certificate CN={info.subject_cn} is not issued by "
                        f"CACertificate '{named}' (its issuer is {info.issuer})",
                        Level.ERROR,
                    )
                continue
            if not any(issued_by(info.pem, ca.pem) for _, ca in _declared_cas(ctx, doc.target)):
                yield Hit(
                    doc,
                    pem.path,
                    f"certificate CN={info.subject_cn} is issued by {info.issuer}, which no "
                    f"CA declared for target '{doc.target}' is",
                )


# ------------------------------------------------------------------------------------------------ azure
def _registration_id(doc: ManifestDoc) -> tuple[PathT, str]:
    for key in ("registrationId", "enrollmentGroupId"):
        if isinstance(doc.spec.get(key), str):
            return ("spec", key), doc.spec[key]
    return ("metadata", "name"), doc.name


def _device_id(doc: ManifestDoc) -> tuple[PathT, str]:
    if isinstance(doc.spec.get("deviceId"), str):
        return ("spec", "deviceId"), doc.spec["deviceId"]
    return ("metadata", "name"), doc.name


@rule(
    "FL007",
    "azure-id-format",
    Level.ERROR,
    security_severity=3.0,
    summary="DPS registration / enrollment group id or IoT Hub device id in a format Azure rejects",
    hint="DPS ids: up to 128 of A-Z a-z 0-9 - . _ : ending with a letter, digit or '-'; device ids: up to 128 "
    "of A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ '",
)
def azure_id_format(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    for doc in ctx.of(AZURE, "Enrollment", "EnrollmentGroup"):
        path, value = _registration_id(doc)
        if not REGISTRATION_ID.match(value):
            what = "registration id" if doc.kind == "Enrollment" else "enrollment group id"
            yield Hit(doc, path, f"DPS {what} '{value}' is not valid")
    for doc in ctx.of(AZURE, "Device"):
        path, value = _device_id(doc)
        if not DEVICE_ID.match(value):
            yield Hit(doc, path, f"IoT Hub device id '{value}' is not valid")


@rule(
    "FL008",
    "azure-id-certificate-cn",
    Level.ERROR,
    security_severity=5.0,
    summary="X.509 device id or DPS registration id differs from its certificate's subject CN",
    hint="IoT Hub and DPS identify an X.509 device by its certificate's CN: make the device id / registration id "
    "equal to the CN, or issue the certificate for that id",
)
def azure_id_certificate_cn(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    for doc in ctx.of(AZURE, "Device", "Enrollment"):
        path, value = _device_id(doc) if doc.kind == "Device" else _registration_id(doc)
        what = "device id" if doc.kind == "Device" else "registration id"
        for pem in ctx.certificates(doc):
            if pem.path[1] in ("authentication", "attestation") and not pem.info.is_ca and pem.info.subject_cn != value:
                yield Hit(
                    doc,
                    path,
                    f"{what} '{value}' differs from its certificate's CN "
                    f"'{pem.info.subject_cn}' ({'.'.join(map(str, pem.path[1:]))})",
                )


# ------------------------------------------------------------------------------------------- endpoints
def _region_of_doc(ctx: LintContext, doc: ManifestDoc) -> tuple[str | None, str | None]:
    """The Target (and its region) a document talks to: metadata.target; else a Target named by a value
    under an endpoint key (`awsIotEndpoint: aws-eu`); else the fleet's only AWS Target."""
    if doc.target:
        return doc.target, ctx.aws_region(doc.target)
    aws_targets = [t for t in ctx.of(CORE, "Target") if isinstance(t.spec.get("aws"), dict)]
    names = {t.name for t in aws_targets}
    for path, value in walk(doc.spec):
        key = path[-1] if isinstance(path[-1], str) else ""
        if "endpoint" in key.lower() and isinstance(value, str) and value in names:
            return value, ctx.aws_region(value)
    if len(aws_targets) == 1:
        return aws_targets[0].name, ctx.aws_region(aws_targets[0].name)
    return None, None


@rule(
    "FL009",
    "cross-region-endpoint",
    Level.ERROR,
    security_severity=5.0,
    summary="an AWS IoT endpoint (*.iot.REGION.amazonaws.com) in another region than the Target's",
    hint="devices must connect to their Target's own endpoint: use the endpoint of the Target's region "
    "(or `awsIotEndpoint: TARGET`, which fleetctl resolves)",
)
def cross_region_endpoint(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    for doc in ctx.docs:
        if doc.is_(CORE, "Target"):
            continue
        target, region = _region_of_doc(ctx, doc)
        if not region:
            continue
        for path, value in walk(doc.spec, ("spec",)):
            if not isinstance(value, str):
                continue
            for m in IOT_HOST.finditer(value):
                if m.group(1).lower() != region:
                    yield Hit(doc, path, f"{m.group(0)} is in {m.group(1)}, but target '{target}' is in {region}")
