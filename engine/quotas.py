"""The default quotas of every cloud API fleetctl calls, each with its provenance, and how an operator raises them.

- `AWS_IOT_QUOTAS` / `azure_hub_quotas(tier, units)`: the default quotas of research/quotas.md §1.1 and §2.1,
  each tagged with its provenance (V verified current default, H 2019 guide only, U assumed) and, for AWS, the
  Service Quotas code an operator asks to raise. Raised quotas are configuration, not code:
  `FLEETCTL_QUOTAS="AttachPolicy=100,CreateThing=200"` (see `overrides_from_env`).
- `plan_quotas(env)`: every quota a plan may touch, with the overrides applied.

The pacing (engine/ratelimit.py) and the apply estimate (engine/estimate.py) both read these tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.humanize import quota_rate


@dataclass(frozen=True)
class Quota:
    """A default request rate. `tag`: V (verified current default), H (2019 guide only), U (assumed)."""

    api: str
    tps: float
    tag: str = "V"
    code: str | None = None  # AWS Service Quotas code (request an increase with it)
    source: str = ""

    def describe(self) -> str:
        """`CreateThing, 100/s`: the API and its rate in plain numbers (engine/humanize.py)."""
        return f"{self.api}, {quota_rate(self.tps)}"


_S1 = "Service Quotas dump (quotas.md S1)"
_S2 = "Thingpress API-limit page (quotas.md S2)"
_H = "2019 AWS IoT developer guide (quotas.md S3)"
_S4 = "quota-code catalog of the `iot` service (quotas.md S4)"  # codes only; the rates are from S2/S3


def _table(rows: Iterable[tuple[str, float, str, str | None, str]]) -> dict[str, Quota]:
    return {api: Quota(api, tps, tag, code, source) for api, tps, tag, code, source in rows}


# research/quotas.md §1.1; codes and the thing-group/type/tag rows from the Service Quotas dump S1.
AWS_IOT_QUOTAS: dict[str, Quota] = _table(
    [
        ("CreateThing", 100, "V", "L-64CBACAC", _S1),
        ("DescribeThing", 350, "V", "L-0EF0F5EE", _S1),
        ("ListThings", 10, "V", "L-57AAC135", _S1),
        ("UpdateThing", 100, "V", "L-211F680E", _S1),
        ("DeleteThing", 100, "V", "L-889800F7", _S1),
        ("AttachThingPrincipal", 100, "V", "L-F64D1AA6", _S1),
        ("DetachThingPrincipal", 100, "V", "L-B5EE4A16", _S1),
        ("ListThingPrincipals", 10, "V", "L-FC3EF4D9", _S1),
        ("ListPrincipalThings", 10, "V", "L-C481616A", _S1),
        ("AddThingToThingGroup", 100, "V", "L-2904683A", _S1),
        ("RemoveThingFromThingGroup", 100, "V", "L-2A81A394", _S1),
        ("ListThingGroupsForThing", 100, "V", "L-75F129AD", _S1),
        ("ListThingsInThingGroup", 25, "V", "L-D33FD5F9", _S1),
        ("ListThingGroups", 10, "V", "L-1E5260D6", _S1),
        ("DescribeThingGroup", 100, "V", "L-52E1E197", _S1),
        ("CreateThingGroup", 25, "V", "L-512F449C", _S1),
        ("UpdateThingGroup", 15, "V", "L-5D84F9FE", _S1),
        ("DeleteThingGroup", 15, "V", "L-FCAB1AF4", _S1),
        ("ListThingTypes", 10, "V", "L-F9EBF527", _S1),
        ("DescribeThingType", 100, "V", "L-DDCF8E97", _S1),
        ("CreateThingType", 15, "V", "L-8650816F", _S1),
        ("DeprecateThingType", 15, "V", "L-7F1DBFAE", _S1),
        ("DeleteThingType", 15, "V", "L-CFBDB489", _S1),
        ("ListTagsForResource", 10, "V", "L-D127B7BE", _S1),
        ("TagResource", 10, "V", "L-06E76376", _S1),
        ("UntagResource", 10, "V", "L-8996ACA8", _S1),
        ("AttachPolicy", 15, "V", "L-CA7D4E3E", _S2),
        ("GetPolicy", 10, "V", "L-5CE9072D", _S2 + "; code " + _S4),
        ("RegisterCertificateWithoutCA", 10, "V", "L-4671C7C8", _S2 + "; code " + _S4),
        ("DescribeCertificate", 10, "V", "L-FC864907", _S2 + "; code " + _S4),
        ("CreatePolicy", 10, "H", "L-1B2EEF52", _H + "; code " + _S4),
        ("CreatePolicyVersion", 10, "H", "L-BD4A365E", _H),
        ("ListAttachedPolicies", 15, "H", None, _H),
        ("ListTargetsForPolicy", 10, "H", None, _H),
        ("RegisterCertificate", 10, "H", "L-8C0011A3", _H + "; code " + _S4),
        ("UpdateCertificate", 10, "H", "L-77B523DC", _H + "; code " + _S4),
        ("DeleteCertificate", 10, "H", "L-EEB8F0B1", _H + "; code " + _S4),
        ("RegisterThing", 10, "H", None, _H),
        ("SearchIndex", 15, "H", None, _H),
        ("ListCertificates", 10, "H", None, "quotas.md §8.1 [H]"),
        ("CreateKeysAndCertificate", 15, "H", "L-40B55430", "2019 guide: certificates registered per second [H]"),
        ("DetachPolicy", 15, "U", "L-EC88D510", "rate assumed equal to AttachPolicy; code " + _S4),
        ("AttachPrincipalPolicy", 15, "U", None, "deprecated form of AttachPolicy: assumed to share its 15 TPS"),
        # CloudTrail, for incremental drift (engine/providers/aws/trail.py): "The rate of lookup requests is limited to
        # two per second, per account, per Region" (API_LookupEvents.html, CloudTrail API reference)
        ("LookupEvents", 2, "V", None, "CloudTrail API reference, LookupEvents"),
    ]
)
# The access and grouping kinds (engine/providers/aws/kinds_access.py). No published rate was found for any of these
# APIs: the AWS IoT Core endpoints-and-quotas page, the API reference pages of each API and the sources of
# research/quotas.md (S1-S4) list none (searched 2026-12-03). Tagged U with the control-plane default assumed, so
# the plan says "assumed"; a raised or measured value is configuration (FLEETCTL_QUOTAS), not code.
_NONE_PUBLISHED = "no published rate (IoT Core quotas page, API reference, quotas.md S1-S4): 10 TPS assumed"
# IAM (ServiceRole) publishes no per-API request rates at all (IAM quotas are object counts); IAM is global, its
# requests count per account, not per region.
_IAM_NONE = "IAM publishes no per-API request rate (its quotas are object counts): 10 TPS assumed"
AWS_IOT_QUOTAS.update(
    _table(
        [
            *(
                (api, 10, "U", None, _NONE_PUBLISHED)
                for api in (
                    "CreateRoleAlias",
                    "UpdateRoleAlias",
                    "DeleteRoleAlias",
                    "DescribeRoleAlias",
                    "ListRoleAliases",
                    "CreateBillingGroup",
                    "UpdateBillingGroup",
                    "DeleteBillingGroup",
                    "DescribeBillingGroup",
                    "ListBillingGroups",
                    "AddThingToBillingGroup",
                    "RemoveThingFromBillingGroup",
                    "ListThingsInBillingGroup",
                    "CreateDynamicThingGroup",
                    "UpdateDynamicThingGroup",
                    "DeleteDynamicThingGroup",
                )
            ),
            *(
                (api, 10, "U", None, _IAM_NONE)
                for api in (
                    "CreateRole",
                    "UpdateRole",
                    "UpdateAssumeRolePolicy",
                    "PutRolePolicy",
                    "DeleteRolePolicy",
                    "DetachRolePolicy",
                    "DeleteRole",
                    "TagRole",
                    "GetRole",
                    "ListRoles",
                    "ListRolePolicies",
                    "GetRolePolicy",
                    "ListAttachedRolePolicies",
                    "ListRoleTags",
                )
            ),
        ]
    )
)
AWS_DEFAULT = Quota("*", 10, "U", None, "no value found: 10 TPS, the usual default of IoT control-plane APIs")
# issue 17 (b): the APIs of the account settings, audit, authorizers, domains and destinations. No published rate
# was found for any of them (the iot-core.html quota page and the API references searched; research/quotas.md has
# none): each is listed with AWS_DEFAULT's assumed rate and says so, so the estimate names the API and its
# provenance instead of silently falling back. Replace a row when a Service Quotas dump shows the value.
_NO_VALUE = (
    "no published value found (iot-core.html, API reference): the 10 TPS default of IoT control-plane APIs assumed"
)
AWS_IOT_QUOTAS.update(
    _table(
        (api, AWS_DEFAULT.tps, "U", None, _NO_VALUE)
        for api in (
            "UpdateIndexingConfiguration",
            "GetIndexingConfiguration",
            "SetV2LoggingOptions",
            "GetV2LoggingOptions",
            "SetV2LoggingLevel",
            "ListV2LoggingLevels",
            "DeleteV2LoggingLevel",
            "UpdateEventConfigurations",
            "DescribeEventConfigurations",
            "UpdateAccountAuditConfiguration",
            "DescribeAccountAuditConfiguration",
            "CreateScheduledAudit",
            "UpdateScheduledAudit",
            "DeleteScheduledAudit",
            "DescribeScheduledAudit",
            "ListScheduledAudits",
            "CreateAuthorizer",
            "UpdateAuthorizer",
            "DeleteAuthorizer",
            "DescribeAuthorizer",
            "ListAuthorizers",
            "CreateDomainConfiguration",
            "UpdateDomainConfiguration",
            "DeleteDomainConfiguration",
            "DescribeDomainConfiguration",
            "ListDomainConfigurations",
            "CreateTopicRuleDestination",
            "UpdateTopicRuleDestination",
            "DeleteTopicRuleDestination",
            "GetTopicRuleDestination",
            "ListTopicRuleDestinations",
        )
    )
)

# research/quotas.md §2.1 (per hub; "unit" = purchased unit) and §2.3 (DPS, per service). Per second.
AZURE_TIERS: dict[str, dict[str, tuple[float, bool]]] = {  # class -> (rate, scales with units)
    "S1": {
        "registry": (100 / 60, True),
        "query": (20 / 60, True),
        "twin_read": (100.0, False),
        "twin_update": (50.0, False),
        "jobs": (100 / 60, True),
    },
    "S2": {
        "registry": (100 / 60, True),
        "query": (20 / 60, True),
        "twin_read": (10.0, True),
        "twin_update": (5.0, True),
        "jobs": (100 / 60, True),
    },
    "S3": {
        "registry": (5000 / 60, True),
        "query": (1000 / 60, True),
        "twin_read": (500.0, True),
        "twin_update": (250.0, True),
        "jobs": (5000 / 60, True),
    },
}
AZURE_TIERS["B1"] = AZURE_TIERS["F1"] = AZURE_TIERS["S1"]
AZURE_TIERS["B2"], AZURE_TIERS["B3"] = AZURE_TIERS["S2"], AZURE_TIERS["S3"]
DPS_SERVICE_OPS_PER_SECOND = 1000 / 60
# AzureClient wire-operation names → throttle class (IoT Hub counts bulk registry calls as registry operations;
# whether one call of 100 devices counts once or 100 times is not documented, quotas.md §11).
_AZURE_CLASS_PREFIXES: tuple[tuple[str, str], ...] = (
    ("query_", "query"),
    ("get_twin", "twin_read"),
    ("update_twin", "twin_update"),
    ("replace_twin", "twin_update"),
    ("bulk_", "registry"),
    ("create_device", "registry"),
    ("update_device", "registry"),
    ("delete_device", "registry"),
    ("get_device", "registry"),
    ("job", "jobs"),
    ("blob.", "storage"),
)


def azure_hub_quotas(tier: str = "S1", units: int = 1) -> dict[str, Quota]:
    """The throttles of one IoT Hub (per class, per second) and of its DPS, for a tier and unit count.
    S2's twin rates are max(floor, per-unit rate) in the docs; units × rate is used above the floor."""
    rows = AZURE_TIERS.get(tier.upper())
    if rows is None:
        raise ValueError(f"unknown IoT Hub tier {tier!r}; known: {', '.join(sorted(AZURE_TIERS))}")
    if units < 1:
        raise ValueError("an IoT Hub has at least one unit")
    out = {
        name: Quota(name, rate * units if per_unit else rate, "V", None, "quotas.md §2.1 (S20)")
        for name, (rate, per_unit) in rows.items()
    }
    if tier.upper() == "S2":
        out["twin_read"] = Quota("twin_read", max(100.0, 10.0 * units), "V", None, "quotas.md §2.1 (S20)")
        out["twin_update"] = Quota("twin_update", max(50.0, 5.0 * units), "V", None, "quotas.md §2.1 (S20)")
    out["dps"] = Quota("dps", DPS_SERVICE_OPS_PER_SECOND, "V", None, "quotas.md §2.3 (S32)")
    return out


def azure_operation_class(operation: str) -> str:
    """The throttle class of an AzureClient wire operation (`query_iot_hub` → query, `enrollment.query` → dps)."""
    if "enrollment" in operation:
        return "dps"
    for prefix, cls in _AZURE_CLASS_PREFIXES:
        if operation.startswith(prefix):
            return cls
    return "arm" if "certificate" in operation or "verification" in operation else "registry"


def overrides_from_env(env: Mapping[str, str], key: str = "FLEETCTL_QUOTAS") -> dict[str, float]:
    """`API=TPS,API=TPS` (raised quotas, e.g. after a Service Quotas increase). Malformed entries raise."""
    out: dict[str, float] = {}
    for part in (env.get(key) or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not sep or rate <= 0:
            raise ValueError(f"{key}: expected API=TPS with a positive rate, got {part.strip()!r}")
        out[name.strip()] = rate
    return out


def with_overrides(quotas: Mapping[str, Quota], overrides: Mapping[str, float]) -> dict[str, Quota]:
    out = dict(quotas)
    for api, rate in overrides.items():
        base = out.get(api)
        out[api] = Quota(api, rate, "configured", base.code if base else None, "FLEETCTL_QUOTAS")
    return out


def quota_of(quotas: Mapping[str, Quota], api: str, default: Quota | None = None) -> Quota:
    """`api`'s quota, or the default (AWS_DEFAULT unless given) under its name."""
    q = quotas.get(api)
    if q is None:
        base = default or AWS_DEFAULT
        q = Quota(api, base.tps, base.tag, None, base.source)
    return q


def plan_quotas(env: Mapping[str, str]) -> dict[str, Quota]:
    """Every API's default quota a plan may touch: AWS IoT by operation name, the Azure hub (tier and units
    from FLEETCTL_AZURE_HUB_TIER, e.g. `S1` or `S3:2`) by throttle class, with FLEETCTL_QUOTAS applied."""
    tier, _, units = (env.get("FLEETCTL_AZURE_HUB_TIER") or "S1").partition(":")
    return with_overrides({**AWS_IOT_QUOTAS, **azure_hub_quotas(tier, int(units or 1))}, overrides_from_env(env))
