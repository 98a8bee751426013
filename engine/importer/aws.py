"""The AWS importer: reads an account through the provider's own bulk read, names certificates, and exports
each kind through a table of exporters.

Reading is `AwsProvider.read` with `ReadOptions(everything=True)`: list calls for every kind, and one
ListThingPrincipals per thing (no bulk API exists for thing↔certificate links: the floor of research/quotas.md
§8.1). The provider reports each finished kind and each ListThings page; both go to the checkpoint, so an
interrupted import continues from the next page instead of the first.

Public material: one DescribeCertificate / DescribeCACertificate per selected certificate, for its PEM (public;
AWS never returns private keys after CreateKeysAndCertificate). fleetctl addresses a certificate by the id it
computes from the PEM (sha256 of the DER, as AWS does), so a PEM whose id differs from the certificate's would
plan as a replacement: such a certificate is skipped with a note rather than written.

Names: AWS identifies certificates by id. A certificate held by exactly one thing is named `<thing>-cert`
(`<thing>-cert-2`, ... for further ones, ACTIVE first); any other is `cert-<first 12 hex of its id>`. A CA
takes its subject CN as a name when that makes a valid, unique name, else `ca-<12 hex>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine import errors
from engine.diagnostics import FleetctlError, error
from engine.importer import aws_account as account_exporters
from engine.importer.model import Note, PublicFile, Unimportable
from engine.importer.registry import Exporter, ProviderImporter, Session
from engine.importer.select import matches
from engine.manifest.types import looks_like_name
from engine.model import ActualResource, Address
from engine.pki import PemError, cert_info
from engine.providers.aws.kinds import ADOPT_ANNOTATION

MATERIAL_BATCH = 250
WORKERS = 16
CERT_STATUSES = ("ACTIVE", "INACTIVE", "REVOKED")


def _when_set(state: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """The keys whose value is set (not None, not empty): leaving one out leaves it unmanaged, as read."""
    return {k: state[k] for k in keys if state.get(k) not in (None, "", [], {})}


def _thing(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = r.state
    attributes = dict(sorted((s.get("attributes") or {}).items()))
    if not s.get("thingType") and len(attributes) > 2:  # the rule of engine/providers/aws/kinds.py _expand_thing
        raise Unimportable(
            "it has no thing type and 3 attributes, and fleetctl needs one attribute for its "
            "ownership marker (AWS allows 3 without a type): give it a thing type, then import again"
        )
    return {
        **_when_set(s, "thingType"),
        "attributes": attributes,
        "groups": list(s.get("groups") or []),
        "principals": list(s.get("principals") or []),
        **_when_set(s, "billingGroup"),
    }


def _thing_type(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    spec = _when_set(r.state, "description", "searchableAttributes")
    if r.state.get("deprecated"):
        spec["deprecated"] = True
    return spec


def _thing_group(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = r.state
    return {
        **_when_set(s, "parent", "description"),
        **({"attributes": dict(sorted(s["attributes"].items()))} if s.get("attributes") else {}),
        "policies": list(s.get("policies") or []),
    }


def _policy(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    return {"document": r.state["document"]}  # keepVersions: the default (5, the AWS maximum)


def _pem(r: ActualResource, files: Mapping[str, str], path: str) -> PublicFile:
    if "certificatePem" not in files:
        raise Unimportable(files.get("error") or "its public certificate was not read")
    return PublicFile(path, files["certificatePem"])


def _ca(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = r.state
    spec: dict[str, Any] = {
        "certificatePem": _pem(r, files, f"certs/ca/{r.address.name}.pem"),
        "status": s["status"],
        "autoRegistration": s["autoRegistration"],
    }
    if s.get("registrationConfig"):
        spec["registrationConfig"] = s["registrationConfig"]
    if r.ids.get("certificateMode") == "SNI_ONLY":
        spec["certificateMode"] = "SNI_ONLY"
    return spec


def _certificate(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = r.state
    if s.get("status") not in CERT_STATUSES:
        raise Unimportable(
            f"its status is {s.get('status')}, a transitional state fleetctl does not manage: "
            "complete or cancel the transfer or registration first"
        )
    return {
        "certificatePem": _pem(r, files, f"certs/{r.address.name}.pem"),
        **_when_set(s, "caCertificate"),
        "status": s["status"],
        "policies": list(s.get("policies") or []),
    }


def _topic_rule(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = r.state
    return {
        "sql": s["sql"],
        **_when_set(s, "description"),
        "awsIotSqlVersion": s.get("awsIotSqlVersion", "2016-03-23"),
        "ruleDisabled": bool(s.get("ruleDisabled")),
        "actions": list(s.get("actions") or []),
        **_when_set(s, "errorAction"),
    }


def _template(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = r.state
    return {
        "templateBody": s["templateBody"],
        "provisioningRoleArn": s["provisioningRoleArn"],
        **_when_set(s, "description"),
        "enabled": bool(s.get("enabled")),
        "type": s.get("type") or "FLEET_PROVISIONING",
        **_when_set(s, "preProvisioningHook"),
    }


def _service_role(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    from engine.providers.aws.kinds_access import INLINE_POLICY, IOT_SERVICE_PRINCIPALS

    s = r.state
    others = [p for p in s.get("assumedBy") or [] if p not in IOT_SERVICE_PRINCIPALS]
    if others or not s.get("assumedBy"):
        raise Unimportable(
            f"its trust policy lets {', '.join(others) or 'no principal'} assume it: a ServiceRole is "
            "trusted by AWS IoT services only; manage this role with your IAM tooling"
        )
    if s.get("policy") is None:
        raise Unimportable(f"it has no inline policy named '{INLINE_POLICY}', the one policy a ServiceRole holds")
    if s.get("attachedPolicies"):
        raise Unimportable(
            f"it holds policies beyond its inline policy ({', '.join(s['attachedPolicies'])}): "
            "fold them into the inline policy first, or they would be detached by the next apply"
        )
    return {
        **_when_set(s, "description"),
        "assumedBy": list(s["assumedBy"]),
        **_when_set(s, "conditions"),
        "maxSessionDuration": s.get("maxSessionDuration", 3600),
        "policy": s["policy"],
    }


def _role_alias(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    return {**_when_set(r.state, "role", "roleArn"), "credentialDurationSeconds": r.state["credentialDurationSeconds"]}


def _billing_group(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    return {**_when_set(r.state, "description"), "tags": dict(sorted((r.state.get("tags") or {}).items()))}


def _dynamic_group(r: ActualResource, files: Mapping[str, str]) -> dict[str, Any]:
    s = r.state
    return {
        "queryString": s["queryString"],
        "indexName": s.get("indexName") or "AWS_Things",
        "queryVersion": s.get("queryVersion") or "2017-09-30",
        **_when_set(s, "description"),
        **({"attributes": dict(sorted(s["attributes"].items()))} if s.get("attributes") else {}),
    }


EXPORTERS: dict[str, Exporter] = {
    "aws.ServiceRole": _service_role,
    "aws.RoleAlias": _role_alias,
    "aws.BillingGroup": _billing_group,
    "aws.DynamicThingGroup": _dynamic_group,
    "aws.ThingType": _thing_type,
    "aws.ThingGroup": _thing_group,
    "aws.Policy": _policy,
    "aws.CACertificate": _ca,
    "aws.Certificate": _certificate,
    "aws.Thing": _thing,
    "aws.TopicRule": _topic_rule,
    "aws.ProvisioningTemplate": _template,
    **account_exporters.EXPORTERS,  # account settings, audit, authorizers, domains, destinations
}


def thing_facts(name: str, state: Mapping[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "name": name,
        "thingType": state.get("thingType"),
        "group": list(state.get("groups") or []),
    }
    for key, value in (state.get("attributes") or {}).items():
        facts[f"attributes.{key}"] = value
    return facts


def _sanitise(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9_.:@-]+", "-", text.lower())).strip("-._:@")[:100]


class AwsImporter(ProviderImporter):
    provider = "aws"
    kinds = (
        "aws.ServiceRole",
        "aws.RoleAlias",
        "aws.ThingType",
        "aws.ThingGroup",
        "aws.BillingGroup",
        "aws.Policy",
        "aws.CACertificate",
        "aws.Certificate",
        "aws.Thing",
        "aws.DynamicThingGroup",
        "aws.TopicRule",
        "aws.ProvisioningTemplate",
        *account_exporters.EXPORTERS,
    )
    # a certificate is managed when a managed thing holds it; singletons and destinations carry no marker
    adoptable = (
        frozenset(kinds) - {"aws.Certificate"} - (frozenset(account_exporters.EXPORTERS) - account_exporters.ADOPTABLE)
    )
    adopt_annotation = ADOPT_ANNOTATION
    filter_keys = {
        "name": "the resource's name (every kind; a certificate's is its id before naming)",
        "thingType": "things of this thing type",
        "group": "things in this thing group",
        "attributes.KEY": "things and thing groups whose attribute KEY matches",
    }
    exporters = EXPORTERS

    # ------------------------------------------------------------------ read
    def connect(self, session: Session) -> Any:
        provider = super().connect(session)
        if session.limiter is not None:  # every request waits for its API's quota (engine/ratelimit.py)
            provider.client.limiter = session.limiter
        return provider

    def read(self, session: Session) -> list[ActualResource]:
        from engine.providers.aws.read import ReadOptions

        provider = self.connect(session)
        cp = session.checkpoint
        known = cp.known()
        session.resumed = sorted(known)
        for kind in session.resumed:
            session.say(f"{kind.split('.')[1]}: {len(known[kind]):,} restored from the checkpoint")
        thing_filters = tuple(session.filters)

        def on_kind(kind: str, resources: list[ActualResource]) -> None:
            cp.kind_done(kind, resources)
            session.say(f"{kind.split('.')[1]}: {len(resources):,} read")

        def on_page(token: str | None, resources: list[ActualResource]) -> None:
            cp.page_done("aws.Thing", token, resources)
            session.say(f"Thing: page {cp.pages_recorded('aws.Thing'):,} read ({len(resources):,} things)")

        def options(things_from: Any) -> Any:
            return ReadOptions(
                everything=True,
                kinds=session.read_kinds,
                known=known,
                things_from=things_from,
                select_thing=(lambda row: matches(thing_filters, thing_facts(row["name"], row)))
                if thing_filters
                else None,
                on_kind=on_kind,
                on_things_page=on_page,
                page_size=session.page_size,
            )

        things_from = cp.pages_from("aws.Thing")
        if things_from is not None:
            session.say(f"Thing: continuing after {len(things_from[1]):,} things read before the interruption")
        try:
            try:
                result = provider.read(session.declared, prune=session.adopt, options=options(things_from))
            except errors.Invalid:
                if things_from is None:
                    raise
                session.say("Thing: the saved page token was refused; reading things again from the first page")
                cp.restart_pages("aws.Thing")
                result = provider.read(session.declared, prune=session.adopt, options=options(None))
        except errors.ProviderError as exc:
            raise FleetctlError(
                error(
                    f"reading aws target '{session.target}' failed: {exc}",
                    "check the Target's credentials and endpoint; run the same command with "
                    "--resume to continue from what was read",
                )
            ) from None
        session.diagnostics.extend(result.diagnostics)
        actual: list[ActualResource] = result.actual
        return actual

    # ------------------------------------------------------------------ filters and files
    def facts(self, resource: ActualResource) -> dict[str, Any]:
        if resource.kind == "aws.Thing":
            return thing_facts(resource.address.name, resource.state)
        facts: dict[str, Any] = {"name": resource.address.name}
        if resource.kind == "aws.ThingGroup":
            for key, value in (resource.state.get("attributes") or {}).items():
                facts[f"attributes.{key}"] = value
        return facts

    def materials(self, session: Session, selected: list[ActualResource]) -> dict[str, dict[str, str]]:
        have = session.checkpoint.materials()
        todo = [
            r for r in selected if r.kind in ("aws.Certificate", "aws.CACertificate") and str(r.address) not in have
        ]
        if not todo:
            return have
        client = self.connect(session).client
        total, done = len(todo) + len(have), len(have)

        def fetch(r: ActualResource) -> tuple[str, dict[str, str]]:
            cid = r.state["certificateId"]
            op = "describe_certificate" if r.kind == "aws.Certificate" else "describe_ca_certificate"
            try:
                pem = client.call(op, certificateId=cid)["certificateDescription"].get("certificatePem") or ""
            except errors.NotFound:
                return str(r.address), {"error": "it was deleted while the import ran"}
            try:
                info = cert_info(pem)
            except PemError as exc:
                return str(r.address), {"error": f"its certificate cannot be read: {exc}"}
            if info.cert_id != cid:
                return str(r.address), {
                    "error": "its id is not the sha256 of its certificate (DER), so fleetctl "
                    "cannot address it by its PEM"
                }
            return str(r.address), {"certificatePem": pem}

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for start in range(0, len(todo), MATERIAL_BATCH):
                batch = dict(pool.map(fetch, todo[start : start + MATERIAL_BATCH]))
                session.checkpoint.add_materials(batch)
                have.update(batch)
                done += len(batch)
                session.say(f"public certificates: {done:,}/{total:,} read")
        return have

    # ------------------------------------------------------------------ names
    def names(
        self, selected: list[ActualResource], materials: Mapping[str, Mapping[str, str]], taken: set[Address]
    ) -> dict[Address, str]:
        out: dict[Address, str] = {}
        used: dict[str, set[str]] = {}
        unnamed = [
            r
            for r in selected
            if r.kind in ("aws.Certificate", "aws.CACertificate") and r.address.name == r.state.get("certificateId")
        ]
        renaming = {r.address for r in unnamed}
        for a in taken - renaming:
            used.setdefault(a.parts[2], set()).add(a.name)

        def claim(r: ActualResource, *candidates: str) -> None:
            names = used.setdefault(r.address.parts[2], set())
            for name in candidates:
                if name and looks_like_name(name) and name not in names:
                    names.add(name)
                    out[r.address] = name
                    return

        for r in sorted((r for r in unnamed if r.kind == "aws.CACertificate"), key=lambda r: r.address):
            cid = r.state["certificateId"]
            cn = ""
            pem = materials.get(str(r.address), {}).get("certificatePem")
            if pem:
                cn = _sanitise(cert_info(pem).subject_cn or "")
            claim(r, cn, f"ca-{cid[:12]}", f"ca-{cid}")

        holders: dict[str, list[str]] = {}
        for t in selected:
            if t.kind == "aws.Thing":
                for p in t.state.get("principals") or []:
                    holders.setdefault(p, []).append(t.address.name)
        certs = [r for r in unnamed if r.kind == "aws.Certificate"]
        by_thing: dict[str, list[ActualResource]] = {}
        for r in certs:
            owners = holders.get(r.address.name, [])
            if len(owners) == 1:
                by_thing.setdefault(owners[0], []).append(r)
        for thing in sorted(by_thing):
            ordered = sorted(by_thing[thing], key=lambda r: (r.state.get("status") != "ACTIVE", r.address.name))
            for i, r in enumerate(ordered):
                claim(
                    r,
                    f"{thing}-cert" + (f"-{i + 1}" if i else ""),
                    f"cert-{r.address.name[:12]}",
                    f"cert-{r.address.name}",
                )
        for r in sorted(certs, key=lambda r: r.address):
            if r.address not in out:
                claim(r, f"cert-{r.address.name[:12]}", f"cert-{r.address.name}")
        return out

    def split_keys(self, selected: list[ActualResource]) -> dict[Address, str]:
        """A thing goes with its first thing group; a certificate with the thing that holds it."""
        out: dict[Address, str] = {}
        for t in selected:
            if t.kind == "aws.Thing" and t.state.get("groups"):
                out[t.address] = t.state["groups"][0]
        for t in sorted((t for t in selected if t.kind == "aws.Thing"), key=lambda t: t.address):
            for p in t.state.get("principals") or []:
                cert = Address.of("aws", t.address.target, "Certificate", p)
                if t.address in out:
                    out.setdefault(cert, out[t.address])
        return out

    def review_notes(self, selected: list[ActualResource]) -> list[Note]:
        """What an operator taking over a script-built fleet should look at (nothing here is changed)."""
        holders: dict[str, int] = {}
        for t in selected:
            if t.kind == "aws.Thing":
                for p in t.state.get("principals") or []:
                    holders[p] = holders.get(p, 0) + 1
        things_read = any(r.kind == "aws.Thing" for r in selected)
        notes = []
        for r in selected:
            if r.kind != "aws.Certificate" or not things_read:
                continue
            n = holders.get(r.address.name, 0)
            if n == 0 and r.state.get("status") == "ACTIVE":
                notes.append(
                    Note(
                        "attention",
                        str(r.address),
                        "ACTIVE but attached to no thing (often left by an "
                        "interrupted registration script); the import keeps it as it is",
                    )
                )
            elif n > 1:
                notes.append(
                    Note("attention", str(r.address), f"shared by {n} things: one credential for several devices")
                )
        return notes


def make_importer() -> AwsImporter:
    return AwsImporter()
