"""AWS access: one boto3 Session per run, cached clients, and the helpers every step uses
(call with intent, paginate, wait, tags). Nothing here is created at import time, so moto and
--endpoint-url always apply."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.waiter
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoRegionError,
    WaiterError,
)

from spotecs import __version__, names
from spotecs.errors import AwsError, Interrupted, UsageError, WaitTimeout
from spotecs.reads import Reads

MANAGED_TAG = "spotecs:managed"
STACK_TAG = "spotecs:stack"

# An endpoint that cannot be reached fails within seconds, not after the full retry budget
# (10 attempts with backoff: about 26 s) meant for throttling and 5xx answers.
CONNECT_TIMEOUT = 4.0
CONNECT_ATTEMPTS = 2

# The first pause of `retry_on`, doubled after each refusal up to RETRY_CAP. What it waits out
# (a resource just created not yet visible to another API, an ENI still detaching) usually passes
# within a second or two, sometimes minutes: starting at the poll delay (5 s) cost 15 s for two
# refusals of a security group AWS saw a second later.
RETRY_FIRST = 1.0
RETRY_CAP = 30.0

# Connections kept open per client: a plan reads a service from up to ~20 threads at once, and
# past botocore's 10 each call after them would open (on AWS: a TCP and a TLS handshake, one or
# two round trips more) and drop a connection of its own.
MAX_POOL_CONNECTIONS = 32

# Read calls by prefix; everything else changes AWS. Used to prove a re-run writes nothing.
READ_PREFIXES = ("Describe", "List", "Get", "Head", "Lookup", "Search")


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    params: dict[str, Any]
    # Which step made it ("" for the run itself), and when (time.monotonic()): what a benchmark
    # needs to find the longest chain of calls that had to wait for one another. Not compared:
    # a call is what was asked of AWS.
    step: str = field(default="", compare=False)
    started: float = field(default=0.0, compare=False)
    # Round trips on the longest chain of answers this call had to wait for, itself included: 1
    # for a call made before any answer came back, 1 + the depth of the last answer its thread
    # had seen otherwise (Aws._shared: a read the read layer shares counts from the call that
    # made it). Unlike `started`, independent of timing: what a test of the plan's critical
    # path asserts. Followed through a plan's reads (Context.for_step, at_once); applying, a
    # worker thread goes on from its previous step's depth: there, time the calls instead.
    depth: int = field(default=0, compare=False)

    @property
    def is_write(self) -> bool:
        return not self.operation.startswith(READ_PREFIXES)

    @property
    def is_lock(self) -> bool:
        """A call on the run's own lock (lock.py): bookkeeping, not a change to the stack."""
        return self.service == "ssm" and names.is_lock_parameter(str(self.params.get("Name", "")))


@dataclass(frozen=True)
class AwsOptions:
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = 10


@dataclass
class Aws:
    """One per run. Thread-safe: clients are created under a lock and shared across threads."""

    options: AwsOptions
    calls: list[Call] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _session: boto3.Session | None = None
    # Set on the first Ctrl-C: no new AWS call starts (but the lock's release), and waits end.
    stopping: threading.Event = field(default_factory=threading.Event)
    # The read layer (`reading`): answers of read calls by (service, operation, parameters).
    reads: Reads = field(default_factory=Reads)
    # The step this thread is working for (Context sets it): recorded with each call.
    _acting: threading.local = field(default_factory=threading.local)
    # When each call's answer (or error) came back, by id(call): with Call.started, what a
    # benchmark needs to tell calls that waited for one another from calls made at once.
    finished: dict[int, float] = field(default_factory=dict)

    def acting_for(self, step: str, depth: int = 0, task: object = None) -> None:
        """The calls this thread makes next are made for `step` (see Call.step). The first time
        this thread works on `task` (a step's view of the context), it goes on from `depth`, the
        answers that task followed (Call.depth): a worker thread then forgets its previous task."""
        self._acting.step = step
        if task is None:
            return
        seen = self._acting.__dict__.setdefault("tasks", weakref.WeakSet())
        if task not in seen:
            seen.add(task)
            self._acting.depth = depth

    @property
    def depth(self) -> int:
        """The depth of the last answer this thread has seen (Call.depth)."""
        return int(getattr(self._acting, "depth", None) or 0)

    def at_depth(self, depth: int) -> None:
        """This thread goes on after answers of that depth (e.g. reads another thread made for it)."""
        self._acting.depth = depth

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            try:
                self._session = boto3.Session(profile_name=self.options.profile, region_name=self.options.region)
            except BotoCoreError as e:  # e.g. ProfileNotFound
                raise UsageError(f"--profile: {e}") from None
        return self._session

    @property
    def region(self) -> str:
        region = self.session.region_name
        if not region:
            raise UsageError("no region: set 'region' in the stack file, pass --region, or set AWS_REGION")
        return region

    def check_options(self) -> None:
        """Options AWS would only refuse after retries (or never, sending calls elsewhere): a region
        where ECS does not run, a malformed endpoint URL, a profile that does not exist. Exit 2
        before any call."""
        endpoint = self.options.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            check_endpoint_url(endpoint)
        region = self.region
        known = {
            r
            for partition in self.session.get_available_partitions()
            for r in self.session.get_available_regions("ecs", partition_name=partition)
        }
        if region not in known:
            raise UsageError(
                f"region '{region}' (from --region, the stack file or AWS_REGION) is not a region where ECS "
                "runs (or one newer than this botocore: upgrade boto3)"
            )

    def client(self, service: str, region: str | None = None) -> Any:
        """The run's client for `service`; `region` only for APIs served from one region
        whatever the stack's (the Pricing API: us-east-1)."""
        key = f"{service}@{region}" if region else service
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                config = Config(
                    retries={"mode": "adaptive", "max_attempts": self.options.max_attempts},
                    connect_timeout=CONNECT_TIMEOUT,
                    user_agent_extra=f"spotecs/{__version__}",
                    max_pool_connections=MAX_POOL_CONNECTIONS,
                )
                endpoint = self.options.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
                try:
                    client = self.session.client(
                        service, region_name=region or self.region, endpoint_url=endpoint, config=config
                    )
                except NoRegionError:
                    raise UsageError("no region: pass --region or set AWS_REGION") from None
                # before-parameter-build carries the API parameters as spotecs passed them
                # (before-call would give the serialised HTTP request instead).
                client.meta.events.register("before-parameter-build", self._record)
                client.meta.events.register_first("needs-retry", _bounded_connection_retries)
                client.meta.events.register("before-parameter-build", self._gate)
                client.meta.events.register("after-call", self._finished)
                client.meta.events.register("after-call-error", self._finished)
                self._clients[key] = client
            return client

    def prepare_clients(self, services: Collection[str]) -> None:
        """Make these services' clients, with their pagination models, before the run's first
        call. Made by the first reader that needs one instead, each would hold up every read
        waiting for it: botocore loads the service's API model, and the run's first pagination
        model scans the folder of every service it knows (400 of them), in each thread that
        gets there before the first has finished."""
        for service in services:
            client = self.client(service)
            client.can_paginate(xform_name(client.meta.service_model.operation_names[0]))
        # urllib3 checks each host it connects to as IDNA: the codec's first use imports it, and
        # every thread that connects before the import is done waits for it.
        "amazonaws.com".encode("idna")

    def streaming_client(self, service: str) -> Any:
        """A client for a long-lived streaming call (CloudWatch Logs live tail): one attempt, so a
        refusal is known at once; and no host prefix before an --endpoint-url, which is already
        the whole address (botocore would send StartLiveTail to `streaming-<endpoint host>`)."""
        endpoint = self.options.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        config = Config(
            retries={"total_max_attempts": 1},
            user_agent_extra=f"spotecs/{__version__}",
            inject_host_prefix=endpoint is None,
        )
        client = self.session.client(service, region_name=self.region, endpoint_url=endpoint, config=config)
        client.meta.events.register("before-parameter-build", self._record)
        return client

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        # list.append is atomic under the GIL: safe from the engine's worker threads.
        step = getattr(self._acting, "step", "")
        call = Call(model.service_model.service_name, model.name, dict(params), step, time.monotonic(), self.depth + 1)
        self.calls.append(call)
        self._acting.call = call
        if call.is_write and not call.is_lock:
            self.reads.forget(call.service)

    # -- the read layer (reads.py) -------------------------------------------------------
    def reading(self) -> AbstractContextManager[None]:
        """Within this block (a plan: the steps' reads, the orphan search, the checks) a read made
        through `read` or `read_pages` goes to AWS once, whoever asks. Outside it, reads are
        made as asked: a wait polls AWS afresh."""
        return self.reads.sharing()

    def read(
        self, intent: str, service: str, operation: str, /, *, missing: Collection[str] = (), **params: Any
    ) -> Any:
        """`call` of a read operation (by its boto3 method name), through the read layer."""
        fetch = getattr(self.client(service), operation)
        return self._shared(service, operation, params, lambda: call(intent, fetch, missing=missing, **params))

    def read_pages(self, intent: str, service: str, operation: str, key: str, /, **params: Any) -> list[Any]:
        """`paginate` into a list, through the read layer."""
        client = self.client(service)
        fetch = lambda: list(paginate(intent, client, operation, key, **params))  # noqa: E731
        return list(self._shared(service, f"{operation}[{key}]", params, fetch))

    def _shared(self, service: str, operation: str, params: dict[str, Any], fetch: Callable[[], Any]) -> Any:
        """`reads.shared`, adding to this thread's depth (Call.depth) the round trips the answer
        took: after the call that made it, or as if this thread had made it, whichever is sooner."""
        start = self.depth

        def counted() -> tuple[Any, int, int]:
            value = fetch()
            return value, self.depth, self.depth - start

        value, came, trips = self.reads.shared(service, operation, params, counted)
        self.at_depth(max(start, min(came, start + trips)))
        return value

    @property
    def sharing_reads(self) -> bool:
        """Whether reads are shared now (`reading`): steps then ask for the batch they belong to."""
        return self.reads.active

    def _finished(self, **_: Any) -> None:
        call = getattr(self._acting, "call", None)
        if call is not None:
            self.finished[id(call)] = time.monotonic()
            self.at_depth(max(self.depth, call.depth))

    def _gate(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if self.stopping.is_set():
            call = Call(model.service_model.service_name, model.name, params)
            if not call.is_lock:
                raise Interrupted(f"not started: the run was interrupted ({call.operation})")

    def writes(self) -> list[Call]:
        """The calls that changed the stack's resources (the lock's own writes are not counted)."""
        return [c for c in self.calls if c.is_write and not c.is_lock]


def client_token(stack: str, key: str, request: dict[str, Any]) -> str:
    """The idempotency token of one create: the same for the same desired create (so a re-run
    after a lost response, or botocore's own retry, gets the first call's resource back instead
    of a second one), different when anything sent differs. 32 hex characters: within ECS's
    36 and EC2's 64."""
    text = json.dumps([stack, key, request], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _bounded_connection_retries(attempts: int, caught_exception: Exception | None = None, **_: Any) -> None:
    # Runs before botocore's retry handler: raising ends the call with the connection error.
    if isinstance(caught_exception, EndpointConnectionError | ConnectTimeoutError) and attempts >= CONNECT_ATTEMPTS:
        raise caught_exception


def check_endpoint_url(url: str) -> None:
    """`--endpoint-url` (or AWS_ENDPOINT_URL) is an http(s) URL botocore can send calls to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--endpoint-url: '{url}' is not an http(s) URL (e.g. http://127.0.0.1:5000)")
    try:
        parts.port  # noqa: B018 (raises on a port out of range)
    except ValueError:
        raise UsageError(f"--endpoint-url: '{url}' has an invalid port") from None


def error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def call(intent: str, fn: Callable[..., Any], /, *, missing: Collection[str] = (), **kwargs: Any) -> Any:
    """Call `fn(**kwargs)`. An AWS error becomes AwsError("Failed to <intent>: <message>");
    an error whose code is in `missing` means "not there" and returns None."""
    try:
        return fn(**kwargs)
    except ClientError as e:
        if error_code(e) in missing:
            return None
        raise _aws_error(intent, e) from None
    except BotoCoreError as e:
        raise _aws_error(intent, e) from None


def _aws_error(intent: str, e: ClientError | BotoCoreError) -> AwsError:
    if isinstance(e, BotoCoreError):  # no response: e.g. the endpoint cannot be reached
        return AwsError(intent, str(e))
    code = error_code(e)
    message = e.response.get("Error", {}).get("Message") or code or str(e)
    return AwsError(intent, f"{message} ({code})" if code and code not in message else message, code)


def paginate(intent: str, client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    """Every item under `key` across all pages of a list/describe call."""
    try:
        for page in client.get_paginator(operation).paginate(**kwargs):
            yield from page.get(key, [])
    except (ClientError, BotoCoreError) as e:
        raise _aws_error(intent, e) from None


def retry_on(
    intent: str,
    fn: Callable[..., Any],
    /,
    *,
    codes: Collection[str],
    timeout: float,
    delay: float = 5.0,
    report: Callable[[str], None] | None = None,
    missing: Collection[str] = (),
    when: Callable[[AwsError], bool] | None = None,
    stop: threading.Event | None = None,
    **kwargs: Any,
) -> Any:
    """Retry while AWS answers one of `codes` (eventual consistency: DependencyViolation,
    ResourceInUse...) or an error `when` recognises, with backoff up to `timeout`; any other
    error fails at once."""
    start = time.monotonic()
    wait = min(delay, RETRY_FIRST)
    while True:
        try:
            return call(intent, fn, missing=missing, **kwargs)
        except AwsError as e:
            elapsed = time.monotonic() - start
            retryable = e.code in codes or (when is not None and when(e))
            if not retryable or elapsed + wait > timeout:
                if retryable:
                    raise WaitTimeout(f"{intent} ({e.detail})", elapsed) from None
                raise
            if report:
                report(f"retrying: {e.code}")
            pause(wait, stop)
            wait = min(wait * 2, RETRY_CAP) if delay else 0


# A just-created instance profile is invisible to EC2 and Auto Scaling for a few seconds; they
# answer "Invalid IamInstanceProfile" under a generic code. Only that message is retried.
_IAM_PROFILE = re.compile(r"iam\s*instance\s*profile|iamInstanceProfile", re.IGNORECASE)


def instance_profile_not_ready(e: AwsError) -> bool:
    """AWS does not see a just-created instance profile yet (IAM is eventually consistent)."""
    return e.code in ("ValidationError", "InvalidParameterValue") and bool(_IAM_PROFILE.search(e.detail))


def caused_by(*causes: tuple[str, str]) -> Callable[[AwsError], bool]:
    """For `retry_on(when=...)`: an error with one of these codes whose message holds the given
    fragment. AWS answers one code for several causes (ELB's InvalidConfigurationRequest, ECS's
    InvalidParameterException): only the cause that passes with time is retried."""

    def matches(e: AwsError) -> bool:
        return any(e.code == code and fragment.lower() in e.detail.lower() for code, fragment in causes)

    return matches


def wait(
    intent: str, client: Any, waiter: str | botocore.waiter.Waiter, *, delay: float, timeout: float, **kwargs: Any
) -> None:
    """Run a botocore waiter (by name, or a custom one from spotecs.waiters) within `timeout`."""
    w = client.get_waiter(waiter) if isinstance(waiter, str) else waiter
    attempts = max(1, int(timeout / delay)) if delay > 0 else max(1, int(timeout))
    try:
        w.wait(WaiterConfig={"Delay": delay, "MaxAttempts": attempts}, **kwargs)
    except WaiterError as e:
        if "Max attempts exceeded" in str(e):
            raise WaitTimeout(intent, timeout) from None
        reason = e.last_response.get("Error", {}).get("Message") if e.last_response else None
        raise AwsError(f"wait for {intent}", reason or str(e)) from None


def poll(
    what: str,
    check: Callable[[], tuple[bool, str]],
    *,
    timeout: float,
    delay: float,
    report: Callable[[str], None] | None = None,
    hint: str = "",
    stop: threading.Event | None = None,
) -> None:
    """The shared waiter for conditions no botocore waiter models (several APIs at once, or a
    status line to show): `check()` returns (done, status)."""
    start = time.monotonic()
    while True:
        done, status = check()
        if report and status:
            report(status)
        if done:
            return
        if time.monotonic() - start > timeout:
            raise WaitTimeout(f"{what} ({status})" if status else what, timeout, hint)
        pause(delay, stop)


def pause(seconds: float, stop: threading.Event | None = None) -> None:
    """Sleep between polls; a Ctrl-C (`stop`) ends the sleep and the wait at once."""
    if stop is None:
        time.sleep(seconds)
    elif stop.wait(seconds):
        raise Interrupted("stopped waiting: the run was interrupted")


def tag_dict(stack: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**(extra or {}), STACK_TAG: stack, MANAGED_TAG: "true"}


def tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    """AWS's several tag shapes: [{'Key','Value'}] (EC2, IAM, ELB), [{'key','value'}] (ECS)."""
    return [{key: k, value: v} for k, v in sorted(tags.items())]


def tags_from_list(items: list[dict[str, str]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for t in items or []:
        k = t.get("Key", t.get("key"))
        v = t.get("Value", t.get("value", ""))
        if k is not None:
            out[k] = v
    return out


def owned_by(tags: dict[str, str], stack: str) -> bool:
    return tags.get(STACK_TAG) == stack and tags.get(MANAGED_TAG) == "true"
