"""fleetctl's extensions to moto's IoT backend, closing gaps that matter for a plan/apply engine.

moto 5.x (research/backends.md §1) does not implement ListCACertificates, the tag APIs or provisioning
templates; it silently drops `tags` on create calls, returns a new registration code on every call, accepts
any verification certificate, ignores auto-registration updates and overwrites a CA registered twice. AWS
does none of that, and fleetctl's ownership marker, CA proof of possession and JITP settings depend on it.
These handlers patch moto's IoT response class inside the sandbox process only, keeping their state on the
moto backend (so `POST /moto-api/reset` clears it). Nothing here is used against real AWS.

Behaviour added, as AWS documents it:
- tags per ARN (create calls, TagResource, UntagResource, ListTagsForResource); ListCACertificates;
- a stable registration code per account and region (`sandbox_registration_code`), and RegisterCACertificate
  checking proof of possession: the verification certificate's CN is the code and the CA signed it
  (RegistrationCodeValidationException / CertificateValidationException otherwise; SNI_ONLY needs none);
  a second registration of the same CA is ResourceAlreadyExistsException (409);
- autoRegistrationStatus and certificateMode kept and returned; UpdateCACertificate's
  newAutoRegistrationStatus and removeAutoRegistration honoured;
- provisioning templates: create, describe, update, delete, list, and versions (at most 5);
- DescribeEndpoint: one IoT data endpoint per account and region (`sandbox_endpoint_id`), as on AWS;
- bulk registration (StartThingRegistrationTask and its four companions): engine/sandbox/moto_bulkreg.py;
- dynamic thing groups, role-alias duration limits, tags on role aliases and billing groups, IAM trust-policy
  checks: engine/sandbox/moto_access.py.
- v2 logging options and levels, event configurations, audit configuration and scheduled audits, custom
  authorizers, domain configurations' TLS policy and tags, topic-rule destinations with their confirmation:
  engine/sandbox/moto_iot_account.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

from engine.sandbox import moto_access

_INSTALLED = False
IOT_LOCK = (
    threading.RLock()
)  # one IoT action at a time (see `serialized` in install); bulk registration tasks take it too
CREATE_CALLS = (
    "create_policy",
    "create_thing_type",
    "create_thing_group",
    "register_ca_certificate",
    "create_topic_rule",
    *moto_access.TAGGED_CREATES,
)


def _store(resp: Any) -> dict[str, dict[str, str]]:
    return resp.iot_backend.__dict__.setdefault("_fleetctl_tags", {})


def _arn_after_create(resp: Any, op: str) -> str | None:
    b = resp.iot_backend
    prefix = f"arn:aws:iot:{b.region_name}:{b.account_id}"
    if op == "create_policy":
        return f"{prefix}:policy/{resp._get_param('policyName')}"
    if op == "create_thing_type":
        return f"{prefix}:thingtype/{resp._get_param('thingTypeName')}"
    if op == "create_thing_group":
        return f"{prefix}:thinggroup/{resp._get_param('thingGroupName')}"
    if op == "create_topic_rule":
        return f"{prefix}:rule/{resp._get_param('ruleName')}"
    if op in moto_access.TAGGED_CREATES:
        return moto_access.created_arn(resp, op)
    if op == "register_ca_certificate":
        pem = resp._get_param("caCertificate")
        return next((ca.arn for ca in b.ca_certificates.values() if ca.certificate_pem == pem), None)
    return None


def _request_tags(resp: Any, op: str) -> dict[str, str]:
    if op == "create_topic_rule":  # TopicRule tags travel as a query string header, "k=v&k2=v2"
        raw = resp.headers.get("x-amz-tagging") or ""
        return dict(part.split("=", 1) for part in raw.split("&") if "=" in part)
    return {t["Key"]: t.get("Value", "") for t in (resp._get_param("tags") or [])}


def _wrap_create(original: Callable, op: str) -> Callable:
    def handler(self):
        result = original(self)
        tags = _request_tags(self, op)
        arn = _arn_after_create(self, op)
        if tags and arn:
            _store(self).setdefault(arn, {}).update(tags)
        return result

    handler.__name__ = op
    return handler


def sandbox_registration_code(account_id: str, region: str) -> str:
    """The sandbox's fixed registration code (AWS's is stable per account and region, too)."""
    return hashlib.sha256(f"fleetctl-sandbox:{account_id}:{region}".encode()).hexdigest()


def _error(kind: str, message: str, status: int = 400) -> Exception:
    from moto.core.exceptions import JsonRESTError

    exc = JsonRESTError(kind, message)
    exc.code = status
    return exc


def _check_proof_of_possession(ca_pem: str, verification_pem: str | None, code: str) -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError:
        raise _error("CertificateValidationException", "The CA certificate is not a valid PEM certificate") from None
    if not verification_pem:
        raise _error("InvalidRequestException", "verificationCertificate is required in DEFAULT mode")
    try:
        leaf = x509.load_pem_x509_certificate(verification_pem.encode())
    except ValueError:
        raise _error(
            "CertificateValidationException", "The verification certificate is not a valid PEM certificate"
        ) from None
    cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns or cns[0].value != code:
        raise _error(
            "RegistrationCodeValidationException",
            "The verification certificate's common name does not match the registration code",
        )
    try:
        leaf.verify_directly_issued_by(ca)
    except Exception:  # noqa: BLE001 - InvalidSignature and ValueError alike mean "not signed by this CA"
        raise _error("CertificateValidationException", "The verification certificate is not signed by the CA") from None


def _ca_extras(resp: Any) -> dict[str, dict[str, str]]:
    return resp.iot_backend.__dict__.setdefault("_fleetctl_ca", {})


def _templates(resp: Any) -> dict[str, dict[str, Any]]:
    return resp.iot_backend.__dict__.setdefault("_fleetctl_templates", {})


def _now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


def _install_ca(IoTResponse: Any, ActionResult: Any, EmptyResult: Any) -> None:
    original_register = IoTResponse.register_ca_certificate
    original_describe = IoTResponse.describe_ca_certificate
    original_update = IoTResponse.update_ca_certificate

    def get_registration_code(self):
        b = self.iot_backend
        return ActionResult({"registrationCode": sandbox_registration_code(b.account_id, b.region_name)})

    def register_ca_certificate(self):
        pem = self._get_param("caCertificate") or ""
        mode = self._get_param("certificateMode") or "DEFAULT"
        b = self.iot_backend
        if mode == "DEFAULT":
            _check_proof_of_possession(
                pem, self._get_param("verificationCertificate"), sandbox_registration_code(b.account_id, b.region_name)
            )
        if any(ca.certificate_pem == pem for ca in b.ca_certificates.values()):
            raise _error("ResourceAlreadyExistsException", "The CA certificate is already registered", 409)
        result = original_register(self)
        _ca_extras(self)[result.result["certificateId"]] = {
            "autoRegistrationStatus": "ENABLE" if self._get_bool_param("allowAutoRegistration") else "DISABLE",
            "certificateMode": mode,
        }
        return result

    def describe_ca_certificate(self):
        result = original_describe(self)
        extras = _ca_extras(self).get(self.path.split("/")[-1], {})
        result.result["certificateDescription"].update(extras)
        return result

    def update_ca_certificate(self):
        result = original_update(self)
        extras = _ca_extras(self).setdefault(self.path.split("/")[-1], {"autoRegistrationStatus": "DISABLE"})
        if self._get_param("newAutoRegistrationStatus"):
            extras["autoRegistrationStatus"] = self._get_param("newAutoRegistrationStatus")
        if self._get_bool_param("removeAutoRegistration"):
            cert = self.iot_backend.describe_ca_certificate(self.path.split("/")[-1])
            cert.registration_config = {}
        return result

    for fn in (get_registration_code, register_ca_certificate, describe_ca_certificate, update_ca_certificate):
        setattr(IoTResponse, fn.__name__, fn)


def _install_templates(IoTResponse: Any, ActionResult: Any, EmptyResult: Any) -> None:
    def _get(self, name: str) -> dict[str, Any]:
        found = _templates(self).get(name)
        if found is None:
            raise _error("ResourceNotFoundException", f"Provisioning template {name} does not exist", 404)
        return found

    def _name(self) -> str:
        return self._get_param("templateName") or self.path.rstrip("/").split("/")[2]

    def create_provisioning_template(self):
        name = self._get_param("templateName")
        store = _templates(self)
        if name in store:
            raise _error("ResourceAlreadyExistsException", f"Provisioning template {name} already exists", 409)
        body = self._get_param("templateBody")
        try:
            json.loads(body)
        except (TypeError, ValueError):
            raise _error("InvalidRequestException", "templateBody is not valid JSON") from None
        b = self.iot_backend
        arn = f"arn:aws:iot:{b.region_name}:{b.account_id}:provisioningtemplate/{name}"
        store[name] = {
            "templateArn": arn,
            "templateName": name,
            "description": self._get_param("description"),
            "enabled": bool(self._get_param("enabled")),
            "provisioningRoleArn": self._get_param("provisioningRoleArn"),
            "preProvisioningHook": self._get_param("preProvisioningHook"),
            "type": self._get_param("type") or "FLEET_PROVISIONING",
            "defaultVersionId": 1,
            "versions": {1: {"templateBody": body, "creationDate": _now()}},
            "creationDate": _now(),
        }
        tags = {t["Key"]: t.get("Value", "") for t in (self._get_param("tags") or [])}
        if tags:
            _store(self).setdefault(arn, {}).update(tags)
        return ActionResult({"templateArn": arn, "templateName": name, "defaultVersionId": 1})

    def describe_provisioning_template(self):
        t = _get(self, _name(self))
        out = {k: v for k, v in t.items() if k != "versions" and v is not None}
        out["templateBody"] = t["versions"][t["defaultVersionId"]]["templateBody"]
        out["lastModifiedDate"] = t["creationDate"]
        return ActionResult(out)

    def list_provisioning_templates(self):
        rows = [
            {k: t[k] for k in ("templateArn", "templateName", "enabled", "type", "creationDate")}
            for _, t in sorted(_templates(self).items())
        ]
        return ActionResult({"templates": rows})

    def update_provisioning_template(self):
        t = _get(self, _name(self))
        for key in ("description", "enabled", "provisioningRoleArn", "preProvisioningHook"):
            if self._get_param(key) is not None:
                t[key] = self._get_param(key)
        if self._get_param("defaultVersionId"):
            t["defaultVersionId"] = int(self._get_param("defaultVersionId"))
        if self._get_bool_param("removePreProvisioningHook"):
            t["preProvisioningHook"] = None
        return EmptyResult()

    def delete_provisioning_template(self):
        _get(self, _name(self))
        del _templates(self)[_name(self)]
        return EmptyResult()

    def create_provisioning_template_version(self):
        t = _get(self, _name(self))
        if len(t["versions"]) >= 5:
            raise _error("VersionsLimitExceededException", "The template already has 5 versions", 409)
        version = max(t["versions"]) + 1
        t["versions"][version] = {"templateBody": self._get_param("templateBody"), "creationDate": _now()}
        is_default = bool(self._get_param("setAsDefault"))
        if is_default:
            t["defaultVersionId"] = version
        return ActionResult(
            {
                "templateArn": t["templateArn"],
                "templateName": t["templateName"],
                "versionId": version,
                "isDefaultVersion": is_default,
            }
        )

    def list_provisioning_template_versions(self):
        t = _get(self, _name(self))
        return ActionResult(
            {
                "versions": [
                    {"versionId": v, "creationDate": d["creationDate"], "isDefaultVersion": v == t["defaultVersionId"]}
                    for v, d in sorted(t["versions"].items())
                ]
            }
        )

    def delete_provisioning_template_version(self):
        t = _get(self, _name(self))
        version = int(self.path.rstrip("/").split("/")[-1])
        if version == t["defaultVersionId"]:
            raise _error("DeleteConflictException", "Cannot delete the default version", 409)
        t["versions"].pop(version, None)
        return EmptyResult()

    for fn in (
        create_provisioning_template,
        describe_provisioning_template,
        list_provisioning_templates,
        update_provisioning_template,
        delete_provisioning_template,
        create_provisioning_template_version,
        list_provisioning_template_versions,
        delete_provisioning_template_version,
    ):
        setattr(IoTResponse, fn.__name__, fn)


def sandbox_endpoint_id(account_id: str, region: str) -> str:
    """The sandbox's IoT data endpoint prefix: AWS's is fixed per account and region, moto draws a new one on
    every DescribeEndpoint call (devices configured from one plan would never match the next)."""
    digest = hashlib.sha256(f"fleetctl-sandbox-endpoint:{account_id}:{region}".encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:14])


def _install_endpoint() -> None:
    from moto.iot.models import IoTBackend

    original = IoTBackend.describe_endpoint

    def describe_endpoint(self, endpoint_type: str):
        result = original(self, endpoint_type)
        result.endpoint = result.endpoint.replace(
            result.endpoint.split(".", 1)[0].removesuffix("-ats"),
            sandbox_endpoint_id(self.account_id, self.region_name),
            1,
        )
        return result

    setattr(IoTBackend, "describe_endpoint", describe_endpoint)  # moto's method, replaced at run time


def install() -> None:
    """Add the missing operations to moto's IoTResponse (idempotent; sandbox process only)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.core.responses import ActionResult, EmptyResult
    from moto.iot.responses import IoTResponse

    def tag_resource(self):
        tags = {t["Key"]: t.get("Value", "") for t in self._get_param("tags") or []}
        _store(self).setdefault(self._get_param("resourceArn"), {}).update(tags)
        return EmptyResult()

    def untag_resource(self):
        body = json.loads(self.body or "{}")
        keys = body.get("tagKeys") or self.querystring.get("tagKeys", [])
        current = _store(self).get(body.get("resourceArn") or self._get_param("resourceArn"), {})
        for key in keys:
            current.pop(key, None)
        return EmptyResult()

    def list_tags_for_resource(self):
        tags = _store(self).get(self._get_param("resourceArn"), {})
        return ActionResult({"tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]})

    def list_ca_certificates(self):
        cas = self.iot_backend.ca_certificates.values()
        return ActionResult(
            {
                "certificates": [
                    {
                        "certificateArn": ca.arn,
                        "certificateId": ca.certificate_id,
                        "status": ca.status,
                        "creationDate": ca.creation_date,
                    }
                    for ca in cas
                ]
            }
        )

    for fn in (tag_resource, untag_resource, list_tags_for_resource, list_ca_certificates):
        setattr(IoTResponse, fn.__name__, fn)

    def _page(self, items: list, size_param: str, default: int, token_param: str) -> tuple[list, str | None]:
        size = int(self._get_param(size_param) or default)
        token = self._get_param(token_param)
        start = int(base64.b64decode(token).decode().split(":", 1)[1]) if token else 0
        end = start + size
        return items[start:end], (base64.b64encode(f"moto-ext:{end}".encode()).decode() if end < len(items) else None)

    def list_things(self):
        name, value, type_name = (self._get_param(k) for k in ("attributeName", "attributeValue", "thingTypeName"))
        things = list(self.iot_backend.things.values())
        if name is not None or type_name is not None:
            things = [
                t
                for t in things
                if (name is None or t.attributes.get(name) == value)
                and (type_name is None or (t.thing_type is not None and t.thing_type.thing_type_name == type_name))
            ]
        page, token = _page(self, things, "maxResults", 50, "nextToken")
        return ActionResult({"things": [t.to_dict() for t in page], "nextToken": token})

    def list_things_in_thing_group(self):
        things = list(self.iot_backend.describe_thing_group(self._get_param("thingGroupName")).things.values())
        page, token = _page(self, things, "maxResults", 250, "nextToken")
        return ActionResult({"things": [t.thing_name for t in page], "nextToken": token})

    def list_certificates(self):
        page, marker = _page(self, list(self.iot_backend.certificates.values()), "pageSize", 250, "marker")
        return ActionResult({"certificates": [c.to_dict() for c in page], "nextMarker": marker})

    # moto builds every item of these lists for every page (and pages two of them not at all): O(fleet) per
    # page, where AWS answers in time independent of the fleet. Paged here, O(page), as AWS pages them.
    for fn in (list_things, list_things_in_thing_group, list_certificates):
        setattr(IoTResponse, fn.__name__, fn)
    # moto's IoT backend is not thread-safe (its lookups iterate dicts other requests insert into, and a
    # "dictionary changed size during iteration" becomes an HTML 500): one IoT action at a time, as moto is
    # GIL-bound anyway. A thing is found by its ARN (the backend's key), not by scanning every thing.
    from moto.iot.models import IoTBackend

    call_action = IoTResponse.call_action

    def serialized(self):
        with IOT_LOCK:
            return call_action(self)

    setattr(IoTResponse, "call_action", serialized)  # moto's methods, replaced at run time
    describe_thing = IoTBackend.describe_thing

    def describe_thing_by_arn(self, thing_name: str):
        prefix = next(iter(self.things), "").rsplit("thing/", 1)[0]
        thing = self.things.get(f"{prefix}thing/{thing_name}") if prefix else None
        return thing if thing is not None and thing.thing_name == thing_name else describe_thing(self, thing_name)

    setattr(IoTBackend, "describe_thing", describe_thing_by_arn)
    # AWS's DescribeCertificate returns the issuing CA's id (CertificateDescription.caCertificateId); moto drops it
    from moto.iot.models import FakeCertificate

    describe = FakeCertificate.to_description_dict
    setattr(
        FakeCertificate,
        "to_description_dict",
        lambda self: {**describe(self), "caCertificateId": self.ca_certificate_id},
    )
    _install_ca(IoTResponse, ActionResult, EmptyResult)
    _install_templates(IoTResponse, ActionResult, EmptyResult)
    _install_endpoint()
    from engine.sandbox import moto_bulkreg  # StartThingRegistrationTask & co. (its tasks take IOT_LOCK per line)

    moto_bulkreg.install(IoTResponse, ActionResult, EmptyResult, IOT_LOCK)
    moto_access.install(IoTResponse, ActionResult, EmptyResult, _error, _store)
    from engine.sandbox import moto_iot_account  # logging v2, events, audit, authorizers, destinations (issue 17)

    moto_iot_account.install(IoTResponse, ActionResult, EmptyResult)
    for op in CREATE_CALLS:
        setattr(IoTResponse, op, _wrap_create(getattr(IoTResponse, op), op))
    _INSTALLED = True
