"""The only module that imports boto3: AWS IoT calls, paging, error translation, call accounting.

Every call goes through `AwsClient.call`, which paces it with the per-API token buckets of engine/ratelimit.py
(when a limiter is set), counts it, retries throttling and transient errors (engine/retry.py, on tenacity, above the
pacing: botocore's own retries are off, and the module docstring there says why), reports mutating calls to the
journal hook (begin before, success/failure after, with the AWS request id and, for a repeated call, its
`attempts`) and translates botocore errors into engine.errors. Endpoint and credentials come from the
standard AWS chain (AWS_PROFILE, AWS_ENDPOINT_URL, OIDC role in CI) unless the Target overrides them.

A Target's `assumeRole` (issue 15.2) is served by botocore's own machinery, not by hand: an
`AssumeRoleCredentialFetcher` over the source credentials (the Target's profile or the ambient chain) wrapped in
`DeferredRefreshableCredentials`, registered as the session's credential provider, so botocore refreshes the
role's credentials before they expire during a long apply. STS is reached through the same endpoint settings
(AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL). `identity()` asks sts:GetCallerIdentity once per client (cached):
the account and role a plan, a drift report and the journal record per Target.

S3 (bulk registration's input file and reports, engine/providers/aws/bulkreg.py) goes through `s3_call`: the
same credentials and retries, counted as `s3:<op>`, neither journaled nor paced by the IoT quotas.

CloudTrail (incremental drift reads, engine/providers/aws/trail.py) goes through `trail_call`: counted as
`cloudtrail:<op>`, retried, and paced by the same limiter (LookupEvents: 2 TPS per account and region). The
account id a snapshot records comes from STS GetCallerIdentity (`account_id`, once per client).

IAM (ServiceRole, engine/providers/aws/iam.py) goes through `iam_call`: exactly like `call` — paced per IAM API,
retried, mutating calls journaled with their request ids — counted as `iam:<op>`. IAM is a global service: its
client is made without the IoT endpoint override (AWS_ENDPOINT_URL_IAM or AWS_ENDPOINT_URL still apply).
"""

from __future__ import annotations

import collections
import re
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, ProfileNotFound
from botocore.parsers import ResponseParserError

from engine import errors
from engine.ratelimit import RateLimiter
from engine.retry import RetryPolicy

MUTATING_PREFIXES = (
    "create_",
    "update_",
    "delete_",
    "attach_",
    "detach_",
    "register_",
    "add_",
    "remove_",
    "set_",
    "replace_",
    "deprecate_",
    "tag_",
    "untag_",
    "start_",
    "accept_",
    "reject_",
    "transfer_",
    "cancel_",
    "put_",
)
_CODE_MAP: dict[str, type[errors.ProviderError]] = {
    "ResourceNotFoundException": errors.NotFound,
    "NotConfiguredException": errors.NotFound,  # GetV2LoggingOptions on an account without v2 logging
    "ResourceAlreadyExistsException": errors.Conflict,
    "DeleteConflictException": errors.Conflict,
    "CertificateStateException": errors.Conflict,
    "VersionsLimitExceededException": errors.Conflict,
    "VersionConflictException": errors.PreconditionFailed,
    "InvalidRequestException": errors.Invalid,
    "MalformedPolicyException": errors.Invalid,
    "CertificateValidationException": errors.Invalid,
    "RegistrationCodeValidationException": errors.Invalid,
    "ValidationException": errors.Invalid,
    "UnauthorizedException": errors.Forbidden,
    "AccessDeniedException": errors.Forbidden,
    "UnrecognizedClientException": errors.Forbidden,
    "ThrottlingException": errors.Throttled,
    "LimitExceededException": errors.Throttled,
    "TooManyRequestsException": errors.Throttled,
    "ServiceUnavailableException": errors.Transient,
    "InternalFailureException": errors.Transient,
    "InternalException": errors.Transient,
    # S3 (bulk registration's input file and reports)
    # IAM (ServiceRole)
    "NoSuchEntity": errors.NotFound,
    "EntityAlreadyExists": errors.Conflict,
    "DeleteConflict": errors.Conflict,
    "MalformedPolicyDocument": errors.Invalid,
    "InvalidInput": errors.Invalid,
    "Throttling": errors.Throttled,
    "NoSuchBucket": errors.NotFound,
    "NoSuchKey": errors.NotFound,
    "AccessDenied": errors.Forbidden,
    "SlowDown": errors.Throttled,
}

S3_MUTATING_PREFIXES = ("put_", "delete_", "copy_")
# (op, phase, request id, error, **fields such as account and role): journal entries (engine/run/applying.py)
CallHook = Callable[..., None]


def is_mutating(op: str) -> bool:
    return op.startswith(MUTATING_PREFIXES)


def error_from_code(code: str, message: str) -> errors.ProviderError:
    """The engine error for an AWS error code reported outside an HTTP answer (a bulk registration ERRORS line)."""
    return _CODE_MAP.get(code, errors.ProviderError)(message or code, code=code or None)


def translate(exc: Exception, op: str) -> errors.ProviderError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code = str(err.get("Code", ""))
        message = str(err.get("Message", "")) or code
        status = meta.get("HTTPStatusCode")
        request_id = meta.get("RequestId")
        if status == 500 and message.lstrip().startswith("<"):
            # moto's server answers an operation it does not implement with an HTML 500 page
            return errors.Unsupported(
                f"the AWS endpoint does not implement {op}", code="NotImplemented", status=500, request_id=request_id
            )
        cls = _CODE_MAP.get(code)
        if cls is None:
            cls = (
                errors.Transient
                if (status or 0) >= 500
                else errors.Throttled
                if status == 429
                else errors.ProviderError
            )
        return cls(message, code=code, status=status, request_id=request_id)
    if isinstance(exc, EndpointConnectionError):
        return errors.Transient(f"cannot reach the AWS endpoint: {exc}", code="EndpointConnectionError")
    if isinstance(exc, BotoCoreError):
        return errors.ProviderError(str(exc), code=type(exc).__name__)
    raise exc


def profile_error(name: str | None, *, from_target: bool) -> errors.ProviderError:
    """An unknown AWS profile, said plainly: which setting named it and which profiles exist (botocore reads
    ~/.aws/config and ~/.aws/credentials, or AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE)."""
    import botocore.session

    try:
        known = sorted(botocore.session.Session(profile=None).available_profiles)
    except Exception:  # noqa: BLE001 - a config file botocore cannot read: say so instead of listing
        known = None
    setting = "the Target's spec.aws.profile" if from_target else "the AWS_PROFILE environment variable"
    listed = (
        f"configured profiles: {', '.join(known)}"
        if known
        else "no profile is configured"
        if known is not None
        else "the AWS config files cannot be read"
    )
    fix = (
        f"fix: add it, e.g. `aws configure --profile {name}`, or "
        + ("remove spec.aws.profile" if from_target else "unset AWS_PROFILE")
        + " to use the standard credential chain"
    )
    return errors.Invalid(
        f"AWS profile '{name}' (from {setting}) is not configured; {listed} (in ~/.aws/config "
        "and ~/.aws/credentials, or the files AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE name); " + fix,
        code="ProfileNotFound",
    )


@dataclass(frozen=True)
class AssumeRole:
    """A Target's `assumeRole` section (engine/manifest/core_kinds.py AwsAssumeRoleSpec), as the client needs it."""

    role_arn: str
    external_id: str | None = None
    session_name: str = "fleetctl"
    duration_seconds: int | None = None

    def assume_kwargs(self) -> dict[str, Any]:
        args: dict[str, Any] = {"RoleSessionName": self.session_name}
        if self.external_id:
            args["ExternalId"] = self.external_id
        if self.duration_seconds:
            args["DurationSeconds"] = self.duration_seconds
        return args


class _AssumedRoleProvider(CredentialProvider):
    """The session's only credential provider: the role's refreshing credentials (fetched on first use)."""

    METHOD = "assume-role"
    CANONICAL_NAME = "custom-fleetctl-assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def _session(
    region: str, profile: str | None, assume: AssumeRole | None, sts_endpoint_url: str | None, where: str
) -> boto3.Session:
    """A boto3 session with the Target's credentials: its profile or the ambient chain, and over them the role it
    assumes (refreshed by botocore). An unknown profile is a plain error naming the setting."""
    try:
        source = botocore.session.Session(profile=profile)
        source.get_scoped_config()  # raises ProfileNotFound for an unknown profile, now rather than mid-plan
    except ProfileNotFound as exc:
        raise profile_error(exc.kwargs.get("profile") or profile, from_target=profile is not None) from None
    except BotoCoreError as exc:  # a malformed config file, ...
        raise errors.Invalid(f"{where}: cannot set up the AWS client: {exc}", code=type(exc).__name__) from None
    if assume is None:
        return boto3.Session(botocore_session=source, region_name=region)
    source_credentials = source.get_credentials()
    if source_credentials is None:
        raise errors.Forbidden(
            f"{where}: no source credentials to assume {assume.role_arn} (spec.aws.assumeRole) "
            "with; fix: give the runner an identity (OIDC role in CI, AWS_PROFILE, "
            "environment credentials) or set spec.aws.profile",
            code="NoCredentials",
        )

    def sts_client(service: str, **kwargs: Any) -> Any:
        return source.create_client(service, region_name=region, endpoint_url=sts_endpoint_url, **kwargs)

    fetcher = AssumeRoleCredentialFetcher(
        sts_client, source_credentials, assume.role_arn, extra_args=assume.assume_kwargs()
    )
    assumed = botocore.session.Session()
    assumed.register_component(
        "credential_provider",
        CredentialResolver(
            [
                _AssumedRoleProvider(
                    DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method="assume-role")
                )
            ]
        ),
    )
    return boto3.Session(botocore_session=assumed, region_name=region)


class AwsClient:
    """A thread-safe wrapper around one boto3 IoT client."""

    def __init__(
        self,
        region: str,
        *,
        profile: str | None = None,
        endpoint_url: str | None = None,
        retry: RetryPolicy | None = None,
        max_pool: int = 32,
        limiter: RateLimiter | None = None,
        s3_endpoint_url: str | None = None,
        assume_role: AssumeRole | None = None,
        sts_endpoint_url: str | None = None,
        cloudtrail_endpoint_url: str | None = None,
        target: str = "",
    ) -> None:
        self.where = f"Target '{target}'" if target else "AWS Target"
        self.assume_role = assume_role
        session = _session(region, profile, assume_role, sts_endpoint_url, self.where)
        self._sts_endpoint = sts_endpoint_url
        self._identity: dict[str, str] | None = None
        config = Config(
            retries={"total_max_attempts": 1}, max_pool_connections=max_pool, connect_timeout=10, read_timeout=60
        )
        try:
            self._iot = session.client("iot", endpoint_url=endpoint_url, config=config)
        except BotoCoreError as exc:  # a malformed config file, an invalid region name, ...
            raise errors.Invalid(f"cannot set up the AWS client: {exc}", code=type(exc).__name__) from None
        except ValueError as exc:  # botocore's "Invalid endpoint: ..."
            raise errors.Invalid(f"cannot set up the AWS client: {exc}", code="InvalidEndpoint") from None
        self.region = region
        self._session, self._config, self._s3_endpoint = session, config, s3_endpoint_url
        self._s3: Any = None
        self._trail_endpoint = cloudtrail_endpoint_url if cloudtrail_endpoint_url is not None else endpoint_url
        self._trail: Any = None
        self._iam: Any = None
        self.retry = retry or RetryPolicy()
        self.retry.on_retry = self._count_retry
        self.calls: collections.Counter[str] = collections.Counter()
        self.throttles = 0
        self.limiter = limiter  # per-API token buckets at the quotas (engine/ratelimit.py); None: unpaced
        self._api_names: dict[str, str] = self._iot.meta.method_to_api_mapping
        self._lock = threading.Lock()
        self._local = threading.local()

    def identity(self) -> dict[str, str]:
        """{"account", "arn", "role"?}: who this client acts as (sts:GetCallerIdentity, asked once and cached).
        With `assumeRole` this is where the role is assumed first: an unusable role is a plain error naming the
        setting and the fix."""
        with self._lock:
            if self._identity is not None:
                return self._identity
        try:
            sts = self._session.client("sts", endpoint_url=self._sts_endpoint, config=self._config)
            answer = self.retry.run(lambda: self._sts_identity(sts))
        except errors.ProviderError as exc:
            if self.assume_role is None:
                raise
            raise type(exc)(
                f"{self.where}: cannot assume role {self.assume_role.role_arn} (spec.aws.assumeRole."
                f"roleArn): {exc}; fix: check the role ARN, that the role's trust policy lets this "
                "identity call sts:AssumeRole (and its ExternalId condition matches spec.aws.assumeRole."
                "externalId), and durationSeconds is within the role's maximum session duration",
                code=exc.code,
                request_id=exc.request_id,
                status=exc.status,
            ) from None
        identity = {"account": str(answer["Account"]), "arn": str(answer["Arn"])}
        if self.assume_role is not None:
            identity["role"] = self.assume_role.role_arn
        with self._lock:
            self._identity = identity
        return identity

    def _sts_identity(self, sts: Any) -> dict[str, Any]:
        with self._lock:
            self.calls["sts:get_caller_identity"] += 1
        try:
            return sts.get_caller_identity()
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "sts:get_caller_identity") from None
        except ResponseParserError as exc:  # an endpoint that is not STS (an IoT-only emulator or proxy)
            raise errors.ProviderError(
                f"the STS endpoint's answer is not STS's: {str(exc).splitlines()[0]}", code="ResponseParserError"
            ) from None

    def known_identity(self) -> dict[str, str] | None:
        """The identity if `identity()` asked already (never a call): what journal entries carry."""
        return self._identity

    def _count_retry(self, exc: errors.ProviderError, attempt: int) -> None:
        with self._lock:
            self.throttles += isinstance(exc, errors.Throttled)

    @property
    def hook(self) -> CallHook | None:
        return getattr(self._local, "hook", None)

    @hook.setter
    def hook(self, value: CallHook | None) -> None:
        self._local.hook = value

    def _once(self, op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls[op] += 1
        if self.limiter is None:
            return self._send(op, kwargs)
        with self.limiter.guard(self._api_names.get(op, op)):  # a token first; Throttled lowers the rate
            return self._send(op, kwargs)

    def _send(self, op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            return getattr(self._iot, op)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, op) from None

    def _iam_client(self) -> Any:
        with self._lock:
            if self._iam is None:
                endpoint = self._iot.meta.endpoint_url if "amazonaws.com" not in self._iot.meta.endpoint_url else None
                self._iam = self._session.client("iam", endpoint_url=endpoint, config=self._config)
            return self._iam

    def _iam_once(self, op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        client = self._iam_client()
        with self._lock:
            self.calls["iam:" + op] += 1

        def send() -> dict[str, Any]:
            try:
                return getattr(client, op)(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "iam:" + op) from None
            except ResponseParserError as exc:  # an answer that is no IAM (XML) response: an endpoint that is not IAM
                raise errors.ProviderError(
                    f"the IAM endpoint gave an answer that is not an IAM response: {exc}", code="ResponseParserError"
                ) from None

        if self.limiter is None:
            return send()
        with self.limiter.guard(client.meta.method_to_api_mapping.get(op, op)):
            return send()

    def iam_call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """One IAM call, as `call` makes IoT calls (paced, retried, mutating calls journaled as `iam:<op>`)."""
        return self.call(op, _send=self._iam_once, **kwargs)

    def call(
        self, op: str, _send: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Make one API call (retrying throttling/transient errors); mutating calls are journaled."""
        once = _send or self._once
        name = op if _send is None else "iam:" + op
        return self._journaled(
            name, self.hook if is_mutating(op) else None, lambda: self.retry.run(lambda: once(op, kwargs))
        )

    def _journaled(self, op: str, hook: CallHook | None, send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """`send()` between the hook's begin and success/failure, each with the request id AWS answered and the
        account (and role) the call acted in, once known (`identity()`)."""
        if hook is None:
            return send()
        who = self.known_identity()
        extra = {"account": who["account"], **({"role": who["role"]} if "role" in who else {})} if who else {}
        hook(op, "begin", None, None, **extra)
        try:
            response = send()
        except errors.ProviderError as exc:
            hook(op, "failure", exc.request_id, exc, **extra, **self._attempts())
            raise
        hook(op, "success", response.get("ResponseMetadata", {}).get("RequestId"), None, **extra, **self._attempts())
        return response

    def _attempts(self) -> dict[str, int]:
        """`attempts` for the journal line of a call the retry policy had to repeat (throttled or transient)."""
        n = self.retry.attempts()
        return {"attempts": n} if n > 1 else {}

    def pages(
        self,
        op: str,
        key: str,
        *,
        page_size: int | None = 250,
        size_arg: str = "maxResults",
        token_in: str = "nextToken",
        token_out: str = "nextToken",
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Every item of a paginated list call (nextToken or marker style)."""
        for items, _ in self.page_iter(
            op, key, page_size=page_size, size_arg=size_arg, token_in=token_in, token_out=token_out, **kwargs
        ):
            yield from items

    def page_iter(
        self,
        op: str,
        key: str,
        *,
        page_size: int | None = 250,
        size_arg: str = "maxResults",
        token_in: str = "nextToken",
        token_out: str = "nextToken",
        start_token: str | None = None,
        **kwargs: Any,
    ) -> Iterator[tuple[list[Any], str | None]]:
        """Each page of a list call with the token of the next one (None after the last): a caller may record
        the token and continue from it later (`start_token`), as a resumed import does."""
        token = start_token
        while True:
            args = dict(kwargs)
            if page_size:
                args[size_arg] = page_size
            if token:
                args[token_in] = token
            response = self.call(op, **args)
            token = response.get(token_out) or None
            yield list(response.get(key, [])), token
            if not token:
                return

    # ------------------------------------------------------------------ S3 (bulk registration files)
    def s3_call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """One S3 call, retried like the IoT calls; a `Body` in the answer is read into bytes. A mutating one
        (PutObject of a registration task's input file) is journaled with its request id like the IoT calls."""

        def once() -> dict[str, Any]:
            with self._lock:
                self.calls["s3:" + op] += 1
                if self._s3 is None:
                    self._s3 = self._session.client(
                        "s3",
                        endpoint_url=self._s3_endpoint,
                        config=self._config.merge(Config(s3={"addressing_style": "path"})),
                    )
            try:
                response = getattr(self._s3, op)(**kwargs)
                if hasattr(response.get("Body"), "read"):
                    response["Body"] = response["Body"].read()
                return response
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "s3:" + op) from None

        mutating = op.startswith(S3_MUTATING_PREFIXES)
        return self._journaled("s3:" + op, self.hook if mutating else None, lambda: self.retry.run(once))

    # ------------------------------------------------------------------ CloudTrail and STS (incremental drift)
    def trail_call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """One CloudTrail call (LookupEvents), paced on its own bucket and retried like the IoT calls."""
        with self._lock:
            if self._trail is None:
                self._trail = self._session.client("cloudtrail", endpoint_url=self._trail_endpoint, config=self._config)
        api = self._trail.meta.method_to_api_mapping.get(op, op)

        def send() -> dict[str, Any]:
            try:
                return getattr(self._trail, op)(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "cloudtrail:" + op) from None

        def once() -> dict[str, Any]:
            with self._lock:
                self.calls["cloudtrail:" + op] += 1
            if self.limiter is None:
                return send()
            with self.limiter.guard(api):
                return send()

        return self.retry.run(once)

    def operation_members(self, api: str) -> frozenset[str] | None:
        """The request members of an IoT API (e.g. CreateJob → jobId, targets, ...) from botocore's model; None
        for an API the model does not know. The CloudTrail reader uses it for events it has no mapping for."""
        try:
            shape = self._iot.meta.service_model.operation_model(api).input_shape
        except Exception:  # noqa: BLE001 - botocore raises OperationNotFoundError, not exported by name
            return None
        return frozenset(shape.members) if shape is not None else frozenset()

    def account_id(self) -> str:
        """The AWS account the credentials belong to (from `identity()`: one STS GetCallerIdentity per client)."""
        return self.identity()["account"]

    def put_text(self, bucket: str, key: str, text: str) -> None:
        self.s3_call(
            "put_object", Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/x-ndjson"
        )

    def get_text(self, bucket: str, key: str) -> str:
        return self.s3_call("get_object", Bucket=bucket, Key=key)["Body"].decode("utf-8")

    def fetch_link(self, link: str) -> str:
        """A report link from ListThingRegistrationTaskReports: a pre-signed URL is fetched as it is (it needs no
        credentials); an S3 URL (virtual-hosted, path style or s3://) is read with GetObject."""
        parts = urlsplit(link)
        if "X-Amz-Signature=" in parts.query or "Signature=" in parts.query:
            with self._lock:
                self.calls["s3:presigned_get"] += 1
            try:
                with urllib.request.urlopen(link, timeout=60) as response:  # noqa: S310 - an https link from AWS
                    return response.read().decode("utf-8")
            except OSError as exc:
                raise errors.Transient(
                    f"cannot read the bulk registration report: {exc}", code="ReportUnreadable"
                ) from None
        host = parts.hostname or ""
        hosted = re.match(r"^(?P<bucket>.+)\.s3[.-][a-z0-9.-]*amazonaws\.com(\.cn)?$", host)
        if parts.scheme == "s3":
            bucket, key = host, unquote(parts.path.lstrip("/"))
        elif hosted:
            bucket, key = hosted["bucket"], unquote(parts.path.lstrip("/"))
        else:
            bucket, _, key = unquote(parts.path.lstrip("/")).partition("/")
        return self.get_text(bucket, key)

    def total_calls(self) -> int:
        return sum(self.calls.values())

    def mutating_calls(self) -> int:
        return sum(n for op, n in self.calls.items() if is_mutating(op))
