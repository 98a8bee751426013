"""The sandbox's AWS IoT account settings, custom authorizers, audit and topic-rule destinations (issue 17).

moto 5.x implements none of: the v2 logging options and per-target log levels, registry event configurations,
Device Defender's account audit configuration and scheduled audits, custom authorizers, topic-rule destinations;
its domain configurations drop `tlsConfig` and `tags`. fleetctl manages all of them, so the sandbox serves them
here, with AWS's request/response shapes (the real botocore model parses every request and serialises every
answer: a field AWS does not have cannot be returned) and AWS's errors:

- authorizers: an ACTIVE authorizer cannot be deleted (DeleteConflictException), nor one a domain configuration
  uses; `signingDisabled: false` needs tokenKeyName and tokenSigningPublicKeys (InvalidRequestException);
- domain configurations: kept by moto, plus tlsConfig (default policy `IoTSecurityPolicy_TLS13_1_2_2022_10`) and
  tags; an ENABLED one cannot be deleted; an authorizer named in authorizerConfig must exist;
- topic-rule destinations: an HTTP destination is created IN_PROGRESS and AWS "sends" a confirmation token to the
  confirmation URL; ConfirmTopicRuleDestination with that token makes it ENABLED; UpdateTopicRuleDestination
  cannot enable an unconfirmed destination. The tokens are exposed to tests at the sandbox-only route
  `GET /moto-api/fleetctl/topic-rule-destinations` (nothing is sent over the network: the sandbox reaches only
  loopback). A VPC destination is ENABLED at once (no confirmation on AWS either);
- the account singletons (logging, events, audit) have AWS's defaults on a fresh account and are reset with it.

State lives on the moto IoT backend (`POST /moto-api/reset` clears it). Never used against real AWS.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from typing import Any
from urllib.parse import unquote

# the event types and audit checks AWS serves: the same lists the kinds validate against (one place)
from engine.providers.aws.kinds_account import AUDIT_CHECKS, EVENT_TYPES

LOG_LEVELS = ("DEBUG", "INFO", "ERROR", "WARN", "DISABLED")
TARGET_TYPES = ("DEFAULT", "THING_GROUP", "CLIENT_ID", "SOURCE_IP", "PRINCIPAL_ID", "EVENT_TYPE", "DEVICE_DEFENDER")
DEFAULT_TLS_POLICY = "IoTSecurityPolicy_TLS13_1_2_2022_10"


def _error(kind: str, message: str, status: int = 400) -> Exception:
    from moto.core.exceptions import JsonRESTError

    exc = JsonRESTError(kind, message)
    exc.code = status
    return exc


def _not_found(what: str) -> Exception:
    return _error("ResourceNotFoundException", f"{what} does not exist", 404)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def account_state(backend: Any) -> dict[str, Any]:
    """The extension's state on one moto IoT backend (one account and region), created with AWS's defaults."""
    state = backend.__dict__.get("_fleetctl_account")
    if state is None:
        state = {
            "logging": None,
            "levels": {},
            "events": {e: False for e in EVENT_TYPES},
            "events_created": _now(),
            "events_modified": _now(),
            "audit": {"roleArn": None, "targets": {}, "checks": {c: False for c in AUDIT_CHECKS}},
            "scheduled": {},
            "authorizers": {},
            "destinations": {},
            "domains": {},
        }
        backend.__dict__["_fleetctl_account"] = state
    return state


def _tags(resp: Any) -> dict[str, dict[str, str]]:
    return resp.iot_backend.__dict__.setdefault("_fleetctl_tags", {})  # shared with engine/sandbox/moto_ext.py


def _save_tags(resp: Any, arn: str) -> None:
    tags = {t["Key"]: t.get("Value", "") for t in (resp._get_param("tags") or [])}
    if tags:
        _tags(resp).setdefault(arn, {}).update(tags)


def _prefix(resp: Any) -> str:
    b = resp.iot_backend
    return f"arn:aws:iot:{b.region_name}:{b.account_id}"


def _install_logging(IoTResponse: Any, ActionResult: Any, EmptyResult: Any) -> None:
    def set_v2_logging_options(self):
        level = self._get_param("defaultLogLevel")
        if level is not None and level not in LOG_LEVELS:
            raise _error("InvalidRequestException", f"defaultLogLevel {level} is not one of {', '.join(LOG_LEVELS)}")
        st = account_state(self.iot_backend)
        current = st["logging"] or {"defaultLogLevel": "ERROR", "disableAllLogs": False}
        role = self._get_param("roleArn")
        if not role and not current.get("roleArn"):
            raise _error("InvalidRequestException", "roleArn is required to enable logging")
        st["logging"] = {
            "roleArn": role or current.get("roleArn"),
            "defaultLogLevel": level or current["defaultLogLevel"],
            "disableAllLogs": bool(self._get_param("disableAllLogs", False)),
        }
        return EmptyResult()

    def get_v2_logging_options(self):
        st = account_state(self.iot_backend)
        if st["logging"] is None:  # a fresh account: AWS answers with logging not configured
            raise _error("NotConfiguredException", "The v2 logging options are not configured", 404)
        return ActionResult(dict(st["logging"]))

    def set_v2_logging_level(self):
        target = self._get_param("logTarget") or {}
        level = self._get_param("logLevel")
        if target.get("targetType") not in TARGET_TYPES:
            raise _error("InvalidRequestException", f"targetType must be one of {', '.join(TARGET_TYPES)}")
        if level not in LOG_LEVELS:
            raise _error("InvalidRequestException", f"logLevel must be one of {', '.join(LOG_LEVELS)}")
        if target["targetType"] != "DEFAULT" and not target.get("targetName"):
            raise _error("InvalidRequestException", "targetName is required for this targetType")
        if account_state(self.iot_backend)["logging"] is None:
            raise _error("NotConfiguredException", "Set the v2 logging options before a logging level", 404)
        account_state(self.iot_backend)["levels"][(target["targetType"], target.get("targetName") or "")] = level
        return EmptyResult()

    def list_v2_logging_levels(self):
        st = account_state(self.iot_backend)
        if st["logging"] is None:
            raise _error("NotConfiguredException", "The v2 logging options are not configured", 404)
        wanted = self._get_param("targetType")
        rows = [
            {"logTarget": {"targetType": t, **({"targetName": n} if n else {})}, "logLevel": level}
            for (t, n), level in sorted(st["levels"].items())
            if wanted in (None, t)
        ]
        size = int(self._get_param("maxResults") or 250)
        start = int(self._get_param("nextToken") or 0)
        nxt = str(start + size) if start + size < len(rows) else None
        return ActionResult({"logTargetConfigurations": rows[start : start + size], "nextToken": nxt})

    def delete_v2_logging_level(self):
        key = (self._get_param("targetType"), self._get_param("targetName") or "")
        if account_state(self.iot_backend)["levels"].pop(key, None) is None:
            raise _not_found(f"Logging level for {key[0]} {key[1]}")
        return EmptyResult()

    def update_event_configurations(self):
        st = account_state(self.iot_backend)
        for name, conf in (self._get_param("eventConfigurations") or {}).items():
            if name not in EVENT_TYPES:
                raise _error("InvalidRequestException", f"{name} is not an event type")
            st["events"][name] = bool((conf or {}).get("Enabled", False))
        st["events_modified"] = _now()
        return EmptyResult()

    def describe_event_configurations(self):
        st = account_state(self.iot_backend)
        return ActionResult(
            {
                "eventConfigurations": {k: {"Enabled": v} for k, v in st["events"].items()},
                "creationDate": st["events_created"],
                "lastModifiedDate": st["events_modified"],
            }
        )

    for fn in (
        set_v2_logging_options,
        get_v2_logging_options,
        set_v2_logging_level,
        list_v2_logging_levels,
        delete_v2_logging_level,
        update_event_configurations,
        describe_event_configurations,
    ):
        setattr(IoTResponse, fn.__name__, fn)


def _install_audit(IoTResponse: Any, ActionResult: Any, EmptyResult: Any) -> None:
    def update_account_audit_configuration(self):
        audit = account_state(self.iot_backend)["audit"]
        checks = self._get_param("auditCheckConfigurations") or {}
        for name in checks:
            if name not in AUDIT_CHECKS:
                raise _error("InvalidRequestException", f"{name} is not a supported audit check")
        role = self._get_param("roleArn")
        if not role and not audit["roleArn"]:
            raise _error("InvalidRequestException", "roleArn is required the first time the audit is configured")
        if role:
            audit["roleArn"] = role
        for kind, conf in (self._get_param("auditNotificationTargetConfigurations") or {}).items():
            if conf.get("enabled") and not (conf.get("targetArn") and conf.get("roleArn")):
                raise _error("InvalidRequestException", "an enabled notification target needs targetArn and roleArn")
            audit["targets"][kind] = {k: v for k, v in conf.items() if v is not None}
        for name, conf in checks.items():
            audit["checks"][name] = bool(conf.get("enabled", False))
        return EmptyResult()

    def describe_account_audit_configuration(self):
        audit = account_state(self.iot_backend)["audit"]
        out: dict[str, Any] = {"auditCheckConfigurations": {k: {"enabled": v} for k, v in audit["checks"].items()}}
        if audit["roleArn"]:
            out["roleArn"] = audit["roleArn"]
        if audit["targets"]:
            out["auditNotificationTargetConfigurations"] = audit["targets"]
        return ActionResult(out)

    def delete_account_audit_configuration(self):
        st = account_state(self.iot_backend)
        st["audit"] = {"roleArn": None, "targets": {}, "checks": {c: False for c in AUDIT_CHECKS}}
        return EmptyResult()

    def _audit_args(self, existing: dict[str, Any] | None) -> dict[str, Any]:
        out = dict(existing or {})
        for key in ("frequency", "dayOfMonth", "dayOfWeek", "targetCheckNames"):
            value = self._get_param(key)
            if value is not None:
                out[key] = value
        freq = out.get("frequency")
        if freq not in ("DAILY", "WEEKLY", "BIWEEKLY", "MONTHLY"):
            raise _error("InvalidRequestException", "frequency must be DAILY, WEEKLY, BIWEEKLY or MONTHLY")
        if freq in ("WEEKLY", "BIWEEKLY") and not out.get("dayOfWeek"):
            raise _error("InvalidRequestException", f"dayOfWeek is required for a {freq} audit")
        if freq == "MONTHLY" and not out.get("dayOfMonth"):
            raise _error("InvalidRequestException", "dayOfMonth is required for a MONTHLY audit")
        if freq != "MONTHLY":
            out.pop("dayOfMonth", None)
        if freq not in ("WEEKLY", "BIWEEKLY"):
            out.pop("dayOfWeek", None)
        enabled = account_state(self.iot_backend)["audit"]["checks"]
        for name in out.get("targetCheckNames") or []:
            if not enabled.get(name):
                raise _error("InvalidRequestException", f"audit check {name} is not enabled for the account")
        return out

    def create_scheduled_audit(self):
        name = self._get_param("scheduledAuditName")
        store = account_state(self.iot_backend)["scheduled"]
        if name in store:
            raise _error("ResourceAlreadyExistsException", f"Scheduled audit {name} already exists", 409)
        arn = f"{_prefix(self)}:scheduledaudit/{name}"
        store[name] = {**_audit_args(self, None), "scheduledAuditName": name, "scheduledAuditArn": arn}
        _save_tags(self, arn)
        return ActionResult({"scheduledAuditArn": arn})

    def _scheduled(self) -> dict[str, Any]:
        name = self._get_param("scheduledAuditName")
        found = account_state(self.iot_backend)["scheduled"].get(name)
        if found is None:
            raise _not_found(f"Scheduled audit {name}")
        return found

    def update_scheduled_audit(self):
        found = _scheduled(self)
        found.update(_audit_args(self, found))
        for key in ("dayOfMonth", "dayOfWeek"):
            if key not in _audit_args(self, found):
                found.pop(key, None)
        return ActionResult({"scheduledAuditArn": found["scheduledAuditArn"]})

    def describe_scheduled_audit(self):
        return ActionResult(dict(_scheduled(self)))

    def list_scheduled_audits(self):
        rows = [
            {
                k: a.get(k)
                for k in ("scheduledAuditName", "scheduledAuditArn", "frequency", "dayOfMonth", "dayOfWeek")
                if a.get(k) is not None
            }
            for _, a in sorted(account_state(self.iot_backend)["scheduled"].items())
        ]
        return ActionResult({"scheduledAudits": rows})

    def delete_scheduled_audit(self):
        found = _scheduled(self)
        del account_state(self.iot_backend)["scheduled"][found["scheduledAuditName"]]
        return EmptyResult()

    for fn in (
        update_account_audit_configuration,
        describe_account_audit_configuration,
        delete_account_audit_configuration,
        create_scheduled_audit,
        update_scheduled_audit,
        describe_scheduled_audit,
        list_scheduled_audits,
        delete_scheduled_audit,
    ):
        setattr(IoTResponse, fn.__name__, fn)


def _check_public_keys(keys: dict[str, str] | None) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    for name, pem in (keys or {}).items():
        try:
            load_pem_public_key(pem.encode())
        except ValueError:
            raise _error(
                "InvalidRequestException", f"token signing public key {name} is not a PEM public key"
            ) from None


def _install_authorizers(IoTResponse: Any, ActionResult: Any, EmptyResult: Any) -> None:
    def _auth(self) -> dict[str, Any]:
        name = self._get_param("authorizerName")
        found = account_state(self.iot_backend)["authorizers"].get(name)
        if found is None:
            raise _not_found(f"Authorizer {name}")
        return found

    def create_authorizer(self):
        name = self._get_param("authorizerName")
        store = account_state(self.iot_backend)["authorizers"]
        if name in store:
            raise _error("ResourceAlreadyExistsException", f"Authorizer {name} already exists", 409)
        signing_disabled = bool(self._get_param("signingDisabled", False))
        keys = self._get_param("tokenSigningPublicKeys")
        if not signing_disabled and not (self._get_param("tokenKeyName") and keys):
            raise _error(
                "InvalidRequestException",
                "tokenKeyName and tokenSigningPublicKeys are required unless signingDisabled is true",
            )
        _check_public_keys(keys)
        arn = f"{_prefix(self)}:authorizer/{name}"
        store[name] = {
            "authorizerName": name,
            "authorizerArn": arn,
            "authorizerFunctionArn": self._get_param("authorizerFunctionArn"),
            "tokenKeyName": self._get_param("tokenKeyName"),
            "tokenSigningPublicKeys": keys or {},
            "status": self._get_param("status") or "ACTIVE",
            "signingDisabled": signing_disabled,
            "enableCachingForHttp": bool(self._get_param("enableCachingForHttp", False)),
            "creationDate": _now(),
            "lastModifiedDate": _now(),
        }
        _save_tags(self, arn)
        return ActionResult({"authorizerName": name, "authorizerArn": arn})

    def update_authorizer(self):
        found = _auth(self)
        for key in (
            "authorizerFunctionArn",
            "tokenKeyName",
            "tokenSigningPublicKeys",
            "status",
            "enableCachingForHttp",
        ):
            value = self._get_param(key)
            if value is not None:
                if key == "tokenSigningPublicKeys":
                    _check_public_keys(value)
                found[key] = value
        found["lastModifiedDate"] = _now()
        return ActionResult({"authorizerName": found["authorizerName"], "authorizerArn": found["authorizerArn"]})

    def describe_authorizer(self):
        found = {k: v for k, v in _auth(self).items() if v is not None}
        return ActionResult({"authorizerDescription": found})

    def list_authorizers(self):
        status = self._get_param("status")
        rows = [
            {"authorizerName": a["authorizerName"], "authorizerArn": a["authorizerArn"]}
            for _, a in sorted(account_state(self.iot_backend)["authorizers"].items())
            if status in (None, a["status"])
        ]
        return ActionResult({"authorizers": rows})

    def delete_authorizer(self):
        found = _auth(self)
        if found["status"] == "ACTIVE":
            raise _error(
                "DeleteConflictException", "An ACTIVE authorizer cannot be deleted: set it INACTIVE first", 409
            )
        for d in self.iot_backend.domain_configurations.values():
            if (d.authorizer_config or {}).get("defaultAuthorizerName") == found["authorizerName"]:
                raise _error(
                    "DeleteConflictException",
                    f"Authorizer {found['authorizerName']} is used by domain configuration "
                    f"{d.domain_configuration_name}",
                    409,
                )
        del account_state(self.iot_backend)["authorizers"][found["authorizerName"]]
        return EmptyResult()

    for fn in (create_authorizer, update_authorizer, describe_authorizer, list_authorizers, delete_authorizer):
        setattr(IoTResponse, fn.__name__, fn)


def _install_domains(IoTResponse: Any, ActionResult: Any, EmptyResult: Any) -> None:
    original_create = IoTResponse.create_domain_configuration
    original_update = IoTResponse.update_domain_configuration
    original_describe = IoTResponse.describe_domain_configuration
    original_delete = IoTResponse.delete_domain_configuration

    def _check_authorizer(self) -> None:
        conf = self._get_param("authorizerConfig") or {}
        name = conf.get("defaultAuthorizerName")
        if name and name not in account_state(self.iot_backend)["authorizers"]:
            raise _error("InvalidRequestException", f"Authorizer {name} does not exist")

    def create_domain_configuration(self):
        _check_authorizer(self)
        result = original_create(self)
        name = self._get_param("domainConfigurationName")
        tls = self._get_param("tlsConfig") or {}
        account_state(self.iot_backend)["domains"][name] = {
            "tlsConfig": {"securityPolicy": tls.get("securityPolicy") or DEFAULT_TLS_POLICY}
        }
        self.iot_backend.domain_configurations[name].domain_configuration_status = "ENABLED"
        _save_tags(self, result.result["domainConfigurationArn"])
        return result

    def update_domain_configuration(self):
        _check_authorizer(self)
        result = original_update(self)
        tls = self._get_param("tlsConfig")
        if tls and tls.get("securityPolicy"):
            account_state(self.iot_backend)["domains"].setdefault(self._get_param("domainConfigurationName"), {})[
                "tlsConfig"
            ] = {"securityPolicy": tls["securityPolicy"]}
        return result

    def describe_domain_configuration(self):
        result = original_describe(self)
        extra = account_state(self.iot_backend)["domains"].get(self._get_param("domainConfigurationName"), {})
        out = {**result.result, "tlsConfig": {"securityPolicy": DEFAULT_TLS_POLICY}, **extra}
        return ActionResult({k: v for k, v in out.items() if v is not None})

    def delete_domain_configuration(self):
        name = self._get_param("domainConfigurationName")
        found = self.iot_backend.domain_configurations.get(name)
        if found is not None and found.domain_configuration_status == "ENABLED":
            raise _error("InvalidRequestException", "A domain configuration must be DISABLED before it is deleted")
        result = original_delete(self)
        account_state(self.iot_backend)["domains"].pop(name, None)
        return result

    for fn in (
        create_domain_configuration,
        update_domain_configuration,
        describe_domain_configuration,
        delete_domain_configuration,
    ):
        setattr(IoTResponse, fn.__name__, fn)


def _install_destinations(IoTResponse: Any, ActionResult: Any, EmptyResult: Any) -> None:
    def _public(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if not k.startswith("_")}

    def _dest(self, arn: str) -> dict[str, Any]:
        found = account_state(self.iot_backend)["destinations"].get(arn)
        if found is None:
            raise _not_found(f"Topic rule destination {arn}")
        return found

    def create_topic_rule_destination(self):
        conf = self._get_param("destinationConfiguration") or {}
        http, vpc = conf.get("httpUrlConfiguration"), conf.get("vpcConfiguration")
        if (http is None) == (vpc is None):
            raise _error("InvalidRequestException", "exactly one of httpUrlConfiguration, vpcConfiguration")
        store = account_state(self.iot_backend)["destinations"]
        arn = f"{_prefix(self)}:ruledestination/{'http' if http else 'vpc'}/{uuid.uuid4()}"
        record: dict[str, Any] = {"arn": arn, "createdAt": _now(), "lastUpdatedAt": _now()}
        if http:
            url = http.get("confirmationUrl") or ""
            if not url.startswith("https://"):
                raise _error("InvalidRequestException", "confirmationUrl must be an HTTPS URL")
            if any((d.get("httpUrlProperties") or {}).get("confirmationUrl") == url for d in store.values()):
                raise _error("ResourceAlreadyExistsException", f"A destination for {url} already exists", 409)
            record.update(
                status="IN_PROGRESS",
                httpUrlProperties={"confirmationUrl": url},
                statusReason="Awaiting confirmation from the endpoint",
                _token=secrets.token_hex(32),
            )
        else:
            assert vpc is not None  # exactly one of the two, checked above
            for key in ("subnetIds", "vpcId", "roleArn"):
                if not vpc.get(key):
                    raise _error("InvalidRequestException", f"vpcConfiguration.{key} is required")
            record.update(
                status="ENABLED",
                vpcProperties={k: vpc[k] for k in ("subnetIds", "securityGroups", "vpcId", "roleArn") if k in vpc},
            )
        store[arn] = record
        return ActionResult({"topicRuleDestination": _public(record)})

    def get_topic_rule_destination(self):
        return ActionResult({"topicRuleDestination": _public(_dest(self, unquote(self._get_param("arn"))))})

    def list_topic_rule_destinations(self):
        rows = []
        for d in account_state(self.iot_backend)["destinations"].values():
            row = {k: d[k] for k in ("arn", "status", "statusReason", "createdAt", "lastUpdatedAt") if k in d}
            if "httpUrlProperties" in d:
                row["httpUrlSummary"] = dict(d["httpUrlProperties"])
            if "vpcProperties" in d:
                row["vpcDestinationSummary"] = dict(d["vpcProperties"])
            rows.append(row)
        return ActionResult({"destinationSummaries": rows})

    def update_topic_rule_destination(self):
        d = _dest(self, self._get_param("arn"))
        status = self._get_param("status")
        if status not in ("ENABLED", "DISABLED", "IN_PROGRESS"):
            raise _error("InvalidRequestException", "status must be ENABLED, DISABLED or IN_PROGRESS")
        if status == "ENABLED" and d.get("_token") and not d.get("_confirmed"):
            raise _error("InvalidRequestException", "The destination has not been confirmed: it cannot be enabled")
        if status == "IN_PROGRESS" and d.get("_token"):  # resend the confirmation: a new token
            d.update(_token=secrets.token_hex(32), _confirmed=False, statusReason="Awaiting confirmation")
        d.update(status=status, lastUpdatedAt=_now())
        return EmptyResult()

    def confirm_topic_rule_destination(self):
        token = unquote(self._get_param("confirmationToken") or "")
        for d in account_state(self.iot_backend)["destinations"].values():
            if d.get("_token") and secrets.compare_digest(d["_token"], token):
                d.update(status="ENABLED", _confirmed=True, lastUpdatedAt=_now())
                d.pop("statusReason", None)
                return EmptyResult()
        raise _error("InvalidRequestException", "The confirmation token is not valid")

    def delete_topic_rule_destination(self):
        arn = unquote(self._get_param("arn"))
        d = _dest(self, arn)
        url = (d.get("httpUrlProperties") or {}).get("confirmationUrl")
        for rule in self.iot_backend.rules.values():
            for action in rule.actions or []:
                if url and (action.get("http") or {}).get("url", "").startswith(url):
                    raise _error(
                        "ConflictingResourceUpdateException", f"Topic rule {rule.rule_name} uses the destination", 409
                    )
        del account_state(self.iot_backend)["destinations"][arn]
        return EmptyResult()

    for fn in (
        create_topic_rule_destination,
        get_topic_rule_destination,
        list_topic_rule_destinations,
        update_topic_rule_destination,
        confirm_topic_rule_destination,
        delete_topic_rule_destination,
    ):
        setattr(IoTResponse, fn.__name__, fn)


def _tokens_route(request: Any, full_url: str, headers: Any) -> tuple[int, dict, str]:
    """GET /moto-api/fleetctl/topic-rule-destinations: what the sandbox "sent" to each HTTP destination's endpoint
    (AWS POSTs a confirmation message with the token to the confirmation URL). Sandbox only."""
    from moto.iot.models import iot_backends

    out = []
    for account, regions in iot_backends.items():
        for region, backend in regions.items():
            for d in account_state(backend)["destinations"].values():
                if d.get("_token"):
                    out.append(
                        {
                            "arn": d["arn"],
                            "confirmationUrl": d["httpUrlProperties"]["confirmationUrl"],
                            "confirmationToken": d["_token"],
                            "status": d["status"],
                            "region": region,
                            "accountId": account,
                            "messageType": "DestinationConfirmation",
                        }
                    )
    return 200, {"Content-Type": "application/json"}, json.dumps(out)


def install(IoTResponse: Any, ActionResult: Any, EmptyResult: Any) -> None:
    """Add the operations to moto's IoTResponse and the sandbox-only token route (called by moto_ext.install)."""
    _install_logging(IoTResponse, ActionResult, EmptyResult)
    _install_audit(IoTResponse, ActionResult, EmptyResult)
    _install_authorizers(IoTResponse, ActionResult, EmptyResult)
    _install_domains(IoTResponse, ActionResult, EmptyResult)
    _install_destinations(IoTResponse, ActionResult, EmptyResult)
    from moto.moto_api._internal import urls

    urls.url_paths["{0}/moto-api/fleetctl/topic-rule-destinations"] = _tokens_route
