"""Which cloud account each AWS Target acts in: recorded by plan and drift, checked by apply (issue 15.2).

A plan is reviewed for one account; the apply of that plan must act in the same account. The CI identity, a
Target's `assumeRole` or the runner's ambient credentials can all change between plan and apply (a role ARN
edited in another PR, a runner given another account's credentials), and applying a plan reviewed for staging to
production is the mistake a platform team expects the tool to refuse. Each AWS provider answers `identity()`
(sts:GetCallerIdentity, once per Target, cached by the client); this module turns those answers into the plan's
`options.accounts` and compares them at apply. A Target that declares `accountId` is checked against it at plan
time too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine import errors
from engine.diagnostics import Diagnostics, FleetctlError, error, warning


class WrongAccount(FleetctlError):
    """Apply would act in another account than the one the plan was made (and reviewed) for."""


def _where(name: str) -> str:
    return f"fleetctl/Target/{name}"


def identities(
    names: Iterable[str],
    provider_of: Callable[[str], Any],
    target_specs: Mapping[str, Any],
    diags: Diagnostics | None = None,
) -> dict[str, dict[str, str]]:
    """{target: {"account", "role"?}} for the named AWS Targets, asking each provider once. An unusable role, or
    an account other than the Target's declared `accountId`, raises FleetctlError. A Target on the ambient chain
    whose STS cannot answer (an emulator without STS) gets a warning in `diags` (its account goes unrecorded and
    unchecked; its read reports any credential problem); without `diags` that is an error too."""
    out: dict[str, dict[str, str]] = {}
    for name in sorted(names):
        provider = provider_of(name)
        if not hasattr(provider, "identity"):
            continue
        try:
            who = provider.identity()
        except errors.ProviderError as exc:
            spec = target_specs.get(name)
            aws = getattr(spec, "aws", None)
            if diags is not None and getattr(aws, "assumeRole", None) is None and not getattr(aws, "accountId", None):
                diags.add(
                    warning(
                        f"cannot tell which AWS account target '{name}' acts in (sts:GetCallerIdentity: "
                        f"{exc}); the plan does not record it and apply cannot check it",
                        "reach STS (AWS_ENDPOINT_URL_STS) or declare spec.aws.accountId",
                        address=_where(name),
                    )
                )
                continue
            raise FleetctlError(
                error(
                    f"cannot tell which AWS account target '{name}' acts in: {exc}",
                    "fix the Target's credentials (spec.aws.profile / spec.aws.assumeRole) or the runner's identity",
                    address=_where(name),
                )
            ) from None
        spec = target_specs.get(name)
        declared = getattr(getattr(spec, "aws", None), "accountId", None)
        if declared and declared != who["account"]:
            raise WrongAccount(
                error(
                    f"target '{name}' declares account {declared} (spec.aws.accountId) but its "
                    f"credentials act in account {who['account']} ({who['arn']})",
                    "use credentials (or an assumeRole role) of account "
                    + declared
                    + ", or correct spec.aws.accountId",
                    address=_where(name),
                )
            )
        out[name] = {"account": who["account"], **({"role": who["role"]} if who.get("role") else {})}
    return out


def check(
    recorded: Mapping[str, Mapping[str, str]],
    provider_of: Callable[[str], Any],
    target_specs: Mapping[str, Any],
    plan_id: str,
) -> dict[str, dict[str, str]]:
    """Refuse (WrongAccount) when a Target of the plan now acts in another account than the plan recorded;
    returns the identities found (what the apply journals)."""
    now = identities(recorded, provider_of, target_specs)
    wrong = [
        (name, want, now[name])
        for name, want in sorted(recorded.items())
        if name in now and now[name]["account"] != want.get("account")
    ]
    if wrong:
        raise WrongAccount(
            [
                error(
                    f"plan {plan_id} was made for target '{name}' in account {want.get('account')}"
                    + (f" (role {want['role']})" if want.get("role") else "")
                    + f", but apply's credentials act in "
                    f"account {got['account']}" + (f" (role {got['role']})" if got.get("role") else ""),
                    "nothing was changed; apply the plan with the identity it was made with, or make a new plan for this "
                    "account and review it",
                    address=_where(name),
                )
                for name, want, got in wrong
            ]
        )
    return now
