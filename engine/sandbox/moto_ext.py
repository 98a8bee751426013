"""fleetctl's extensions to moto's IoT backend, closing gaps that matter for a plan/apply engine.

moto 5.x does not implement ListCACertificates nor the tag APIs (TagResource, UntagResource,
ListTagsForResource), and silently drops `tags` on create calls (research/backends.md §1). AWS has all of
them, and fleetctl's ownership marker for policies, thing types, CAs and rules is a tag. These handlers add
them to moto's IoT response class inside the sandbox process only, storing tags per ARN on the moto backend
(so `POST /moto-api/reset` clears them). Nothing here is used against real AWS.
"""
from __future__ import annotations

import json
from typing import Any, Callable

_INSTALLED = False
CREATE_CALLS = ("create_policy", "create_thing_type", "create_thing_group", "register_ca_certificate",
                "create_topic_rule")


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
    if op == "register_ca_certificate":
        pem = resp._get_param("caCertificate")
        return next((ca.arn for ca in b.ca_certificates.values() if ca.certificate_pem == pem), None)
    return None


def _request_tags(resp: Any, op: str) -> dict[str, str]:
    if op == "create_topic_rule":     # TopicRule tags travel as a query string header, "k=v&k2=v2"
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
        return ActionResult({"certificates": [
            {"certificateArn": ca.arn, "certificateId": ca.certificate_id, "status": ca.status,
             "creationDate": ca.creation_date} for ca in cas]})

    for fn in (tag_resource, untag_resource, list_tags_for_resource, list_ca_certificates):
        setattr(IoTResponse, fn.__name__, fn)
    for op in CREATE_CALLS:
        setattr(IoTResponse, op, _wrap_create(getattr(IoTResponse, op), op))
    _INSTALLED = True
