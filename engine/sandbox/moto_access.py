"""fleetctl's extensions to moto for the access and grouping kinds (ServiceRole, RoleAlias, BillingGroup,
DynamicThingGroup), installed by engine/sandbox/moto_ext.py. Sandbox process only; never used against AWS.

moto 5.2 gaps closed here, as AWS documents the behaviour (request and response shapes of the botocore models):
- CreateDynamicThingGroup, UpdateDynamicThingGroup, DeleteDynamicThingGroup are not implemented (moto answers
  with an HTML 500). Served here on moto's own thing-group records, so ListThingGroups lists dynamic groups with
  the static ones and DescribeThingGroup returns `queryString`, `indexName`, `queryVersion` and `status`, as on AWS.
  Creating one needs thing indexing on (UpdateIndexingConfiguration, mode REGISTRY or more): InvalidRequestException
  otherwise; a dynamic group cannot be deleted with DeleteThingGroup, nor a static one with
  DeleteDynamicThingGroup (InvalidRequestException). Membership is not computed (the sandbox has no fleet index):
  ListThingsInThingGroup of a dynamic group answers an empty list.
- CreateRoleAlias accepts any credentialDurationSeconds; AWS allows 900-43200 (InvalidRequestException).
- tags on CreateRoleAlias, CreateBillingGroup and CreateDynamicThingGroup are dropped by moto; they are kept in the
  tag store of moto_ext (ListTagsForResource answers them, TagResource/UntagResource change them).
- IAM CreateRole and UpdateAssumeRolePolicy accept any text as a trust policy; AWS refuses a document that is not
  JSON, has no Statement, or a statement without Principal or Action (MalformedPolicyDocument, 400).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

TAGGED_CREATES = ("create_role_alias", "create_billing_group")  # their ARNs: `created_arn`


def created_arn(resp: Any, op: str) -> str | None:
    b = resp.iot_backend
    prefix = f"arn:aws:iot:{b.region_name}:{b.account_id}"
    if op == "create_role_alias":
        return f"{prefix}:rolealias/{unquote(resp.path.rsplit('/', 1)[-1])}"
    if op == "create_billing_group":
        return f"{prefix}:billinggroup/{unquote(resp.path.rsplit('/', 1)[-1])}"
    return None


def _dynamic(resp: Any) -> dict[str, dict[str, Any]]:
    return resp.iot_backend.__dict__.setdefault("_fleetctl_dynamic", {})


def install(
    IoTResponse: Any,
    ActionResult: Any,
    EmptyResult: Any,
    error: Callable[..., Exception],
    tag_store: Callable[[Any], dict[str, dict[str, str]]],
) -> None:
    def _name(self) -> str:
        return unquote(self.path.rstrip("/").rsplit("/", 1)[-1])

    def create_dynamic_thing_group(self):
        name = _name(self)
        mode = self.iot_backend.indexing_configuration.to_dict()["thingIndexingConfiguration"]["thingIndexingMode"]
        if mode == "OFF":
            raise error(
                "InvalidRequestException",
                "Thing indexing is not enabled: a dynamic thing group needs "
                "thingIndexingMode REGISTRY or REGISTRY_AND_SHADOW (UpdateIndexingConfiguration)",
            )
        query = self._get_param("queryString")
        if not query:
            raise error("InvalidQueryException", "queryString is required")
        props = self._get_param("thingGroupProperties") or {}
        if name in _dynamic(self) or any(g.thing_group_name == name for g in self.iot_backend.thing_groups.values()):
            raise error("ResourceAlreadyExistsException", f"Thing Group {name} already exists", 409)
        _, arn, gid = self.iot_backend.create_thing_group(name, None, props)
        _dynamic(self)[name] = {
            "queryString": query,
            "indexName": self._get_param("indexName") or "AWS_Things",
            "queryVersion": self._get_param("queryVersion") or "2017-09-30",
            "status": "ACTIVE",
        }
        tags = {t["Key"]: t.get("Value", "") for t in self._get_param("tags") or []}
        if tags:
            tag_store(self).setdefault(arn, {}).update(tags)
        extra = _dynamic(self)[name]
        return ActionResult({"thingGroupName": name, "thingGroupArn": arn, "thingGroupId": gid, **extra})

    def update_dynamic_thing_group(self):
        name = _name(self)
        if name not in _dynamic(self):
            raise error("ResourceNotFoundException", f"Dynamic thing group {name} does not exist", 404)
        props = self._get_param("thingGroupProperties") or {}
        version = self.iot_backend.update_thing_group(name, props, self._get_param("expectedVersion"))
        extra = _dynamic(self)[name]
        for key in ("queryString", "indexName", "queryVersion"):
            if self._get_param(key):
                extra[key] = self._get_param(key)
        return ActionResult({"version": version})

    def delete_dynamic_thing_group(self):
        name = _name(self)
        if name not in _dynamic(self):
            if any(g.thing_group_name == name for g in self.iot_backend.thing_groups.values()):
                raise error("InvalidRequestException", f"{name} is a static thing group: use DeleteThingGroup")
            return EmptyResult()  # AWS: deleting a group that does not exist succeeds
        self.iot_backend.delete_thing_group(name)
        del _dynamic(self)[name]
        return EmptyResult()

    original_describe = IoTResponse.describe_thing_group
    original_delete = IoTResponse.delete_thing_group
    original_members = IoTResponse.list_things_in_thing_group
    original_alias = IoTResponse.create_role_alias
    original_update_alias = IoTResponse.update_role_alias

    def describe_thing_group(self):
        result = original_describe(self)
        extra = _dynamic(self).get(_name(self))
        if extra is None:
            return result
        return ActionResult({**result.result, **extra})

    def delete_thing_group(self):
        if _name(self) in _dynamic(self):
            raise error(
                "InvalidRequestException", f"{_name(self)} is a dynamic thing group: use DeleteDynamicThingGroup"
            )
        return original_delete(self)

    def list_things_in_thing_group(self):
        name = unquote(self.path.split("/thing-groups/")[-1].split("/")[0])
        if name in _dynamic(self):
            return ActionResult({"things": [], "nextToken": None})
        return original_members(self)

    def _duration(self) -> None:
        seconds = self._get_param("credentialDurationSeconds")
        if seconds is not None and not 900 <= int(seconds) <= 43200:
            raise error("InvalidRequestException", "credentialDurationSeconds must be between 900 and 43200")

    def create_role_alias(self):
        _duration(self)
        return original_alias(self)

    def update_role_alias(self):
        _duration(self)
        return original_update_alias(self)

    for fn in (
        create_dynamic_thing_group,
        update_dynamic_thing_group,
        delete_dynamic_thing_group,
        describe_thing_group,
        delete_thing_group,
        list_things_in_thing_group,
        create_role_alias,
        update_role_alias,
    ):
        setattr(IoTResponse, fn.__name__, fn)
    _install_iam(error)


def _check_trust(document: Any, error: Callable[..., Exception]) -> None:
    try:
        doc = json.loads(unquote(document)) if isinstance(document, str) else document
    except (TypeError, ValueError):
        raise error("MalformedPolicyDocument", "This policy contains invalid Json") from None
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if not statements:
        raise error("MalformedPolicyDocument", "The policy is missing a Statement")
    for st in statements if isinstance(statements, list) else [statements]:
        if not isinstance(st, dict) or "Principal" not in st and "NotPrincipal" not in st:
            raise error("MalformedPolicyDocument", "AssumeRolepolicy contains an invalid principal")
        if "Action" not in st and "NotAction" not in st:
            raise error("MalformedPolicyDocument", "The policy statement has no Action")


def _install_iam(error: Callable[..., Exception]) -> None:
    from moto.iam.responses import IamResponse

    def iam_error(code: str, message: str) -> Exception:
        # moto serialises its service exceptions with the status IAM's model gives the code (400 here)
        from moto.iam.exceptions import IAMException

        return IAMException(code, message)

    original_create, original_update = IamResponse.create_role, IamResponse.update_assume_role_policy

    def create_role(self):
        _check_trust(self._get_param("AssumeRolePolicyDocument"), iam_error)
        return original_create(self)

    def update_assume_role_policy(self):
        _check_trust(self._get_param("PolicyDocument"), iam_error)
        return original_update(self)

    for fn in (create_role, update_assume_role_policy):
        setattr(IamResponse, fn.__name__, fn)  # moto's handlers, replaced at run time
