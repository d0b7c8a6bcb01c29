"""Run moto's server in-process on 127.0.0.1, with the simulated ECS agent beside it."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from spotecs.errors import SandboxError, UsageError
from spotecs.sandbox.backends import require_moto

if TYPE_CHECKING:
    from spotecs.sandbox.agent import SimulatedAgent

# Set only when the caller has not chosen otherwise.
SANDBOX_ENV = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
    # Needed to attach AWS-managed policies (AmazonEC2ContainerServiceforEC2Role...).
    # moto reads it when an account's IAM backend is first created, i.e. on first use.
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
}


# Milliseconds added to every request the sandbox answers (`--sandbox`; `spotecs sandbox
# --latency-ms` sets it too): AWS answers in tens of milliseconds, the sandbox in about one, so
# a benchmark can see what runs at once and what waits.
LATENCY_ENV = "SPOTECS_SANDBOX_LATENCY_MS"


def latency_from_env() -> float:
    """SPOTECS_SANDBOX_LATENCY_MS as milliseconds (0 when unset); a bad value is a usage error."""
    raw = os.environ.get(LATENCY_ENV, "").strip()
    try:
        value = float(raw) if raw else 0.0
    except ValueError:
        value = -1.0
    if not 0 <= value <= 60_000:
        raise UsageError(f"{LATENCY_ENV}: '{raw}' is not a number of milliseconds from 0 to 60000")
    return value


class _Serialized:
    """WSGI wrapper: one request at a time, never in the middle of an agent tick."""

    def __init__(self, app: Callable[..., Iterable[bytes]], lock: threading.RLock) -> None:
        self.app = app
        self.lock = lock

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.lock:
            if environ.get("PATH_INFO") == PUBLISH_AMI_PATH:
                return _publish_ami(environ, start_response)
            return self.app(environ, start_response)


class _Delayed:
    """WSGI wrapper: each request waits `latency_ms` outside the request lock, as a network round
    trip would: requests sent at once wait it out together, not one after another. Half on the
    way in and half on the way back, as a round trip is spent: all of it before the answer made
    the sandbox (which answers one request at a time) work on a plan's requests just when the
    next round of them arrives, queueing those behind the last round's, which AWS does not do."""

    def __init__(self, app: Callable[..., Iterable[bytes]], latency_ms: float) -> None:
        self.app = app
        self.latency = latency_ms / 1000

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        time.sleep(self.latency / 2)
        answer = self.app(environ, start_response)
        time.sleep(self.latency / 2)
        return answer


# POST here (`?alias=al2023&region=us-east-1`) publishes a newer ECS-optimized AMI (amis.py).
PUBLISH_AMI_PATH = "/_spotecs/publish-ami"


def _publish_ami(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    import json
    from urllib.parse import parse_qs

    from spotecs.sandbox.amis import publish_ami

    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if environ.get("REQUEST_METHOD") != "POST":
        start_response("405 Method Not Allowed", [("Content-Type", "text/plain")])
        return [b"POST only\n"]
    try:
        image_id = publish_ami(query.get("alias", "al2023"), query.get("region", "us-east-1"))
    except ValueError as exc:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [f"{exc}\n".encode()]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"image_id": image_id}).encode() + b"\n"]


class Sandbox:
    """moto's ThreadedMotoServer plus the simulated agent; started on construction.

    ``with Sandbox() as sb: boto3.client("ecs", endpoint_url=sb.endpoint_url, ...)``.
    moto's state is process-wide: two Sandboxes in one process share it.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        agent_interval: float | None = 0.5,
        clock_factor: float | None = None,
        latency_ms: float | None = None,
        lag: int | None = None,
    ) -> None:
        """``port`` 0/None picks a free one; ``agent_interval`` None means tick() by hand;
        ``clock_factor`` divides AWS's delays (clock.py; default: SPOTECS_SANDBOX_CLOCK, or 1);
        ``latency_ms`` is added to every request (None: SPOTECS_SANDBOX_LATENCY_MS, else 0);
        ``lag``: how many calls do not yet see a resource just created, as on AWS (rules.STRICT;
        default rules.DEFAULT_LAG). The account starts fresh: no service-linked roles."""
        self.latency_ms = latency_from_env() if latency_ms is None else latency_ms
        require_moto()
        _set_default_env()
        from moto.server import ThreadedMotoServer

        from spotecs.sandbox import certificates, lb_front, rules, sample_secrets
        from spotecs.sandbox.agent import SimulatedAgent
        from spotecs.sandbox.clock import CLOCK

        rules.install()  # and the fills
        self._lag_before = rules.STRICT.lag  # moto's state is process-wide: put it back on stop
        rules.STRICT.lag = rules.DEFAULT_LAG if lag is None else lag
        rules.STRICT.reset()
        certificates.install()
        sample_secrets.install()
        _quiet_request_log()
        if port:
            _check_port_free(host, port)  # moto's start() would hang on a bind error
        self.agent: SimulatedAgent = SimulatedAgent()
        self._clock_before = CLOCK.factor  # process-wide too: put back on stop
        if clock_factor is not None:
            CLOCK.factor = clock_factor
        lb_front.enable(self.agent.lock)  # load balancers created from now on answer HTTP
        self._server = ThreadedMotoServer(ip_address=host, port=port or 0, verbose=False)
        self._server.start()
        self._serialize_requests()
        self._answer_without_delay()
        bound_host, bound_port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{bound_host}:{bound_port}"
        self._running = True
        if agent_interval is not None:
            self.agent.start(agent_interval)

    def _serialize_requests(self) -> None:
        # ThreadedMotoServer keeps its werkzeug server in ._server; if that ever changes we
        # only lose the request/tick exclusion, not the sandbox.
        wsgi_server = getattr(self._server, "_server", None)
        if wsgi_server is not None and hasattr(wsgi_server, "app"):
            from spotecs.sandbox.prices import PricingApi

            app: Any = PricingApi(_Serialized(wsgi_server.app, self.agent.lock))
            wsgi_server.app = _Delayed(app, self.latency_ms) if self.latency_ms else app

    def _answer_without_delay(self) -> None:
        # werkzeug writes an answer's headers and its body in two sends. With Nagle's algorithm on
        # (the socket default) the body waits for the client to acknowledge the headers, which
        # Linux delays by up to 40 ms: 40 ms added to some answers, at random, that AWS (one TLS
        # record per answer, TCP_NODELAY) does not add. A latency benchmark would count it as the
        # client's (bench/figures.py, --latency-ms).
        wsgi_server: Any = getattr(self._server, "_server", None)
        handler = getattr(wsgi_server, "RequestHandlerClass", None)
        if handler is not None:
            wsgi_server.RequestHandlerClass = type("NoDelayHandler", (handler,), {"disable_nagle_algorithm": True})

    def client(self, service: str, region_name: str = "us-east-1") -> Any:
        """A boto3 client for this sandbox; one attempt only, as moto's 500s are final."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            region_name=region_name,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"total_max_attempts": 1}),
        )

    def tick(self) -> Any:
        """Run one agent pass now (see SimulatedAgent.tick)."""
        return self.agent.tick()

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self.agent.stop()
        self._server.stop()
        from spotecs.sandbox import lb_front

        lb_front.disable()
        from spotecs.sandbox import rules
        from spotecs.sandbox.clock import CLOCK

        CLOCK.factor = self._clock_before

        rules.STRICT.lag = self._lag_before

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _set_default_env() -> None:
    for name, value in SANDBOX_ENV.items():
        os.environ.setdefault(name, value)
    if os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"].lower() == "true":
        _load_managed_policies_into_existing_iam()


def _load_managed_policies_into_existing_iam() -> None:
    """IAM backends created before the env var was set lack the AWS-managed policies."""
    from spotecs.sandbox.backends import regions_with_state

    for _, _, iam in regions_with_state("iam"):
        if not iam.aws_managed_policies:
            iam.aws_managed_policies = iam._init_aws_policies()
            iam.managed_policies.update({p.arn: p for p in iam.aws_managed_policies})


def _quiet_request_log() -> None:
    # werkzeug logs every request at INFO; keep that out of CLI and test output unless the
    # caller configured the "werkzeug" logger themselves.
    werkzeug_log = logging.getLogger("werkzeug")
    if werkzeug_log.level == logging.NOTSET:
        werkzeug_log.setLevel(logging.WARNING)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SandboxError(
                f"--port {port}: {host}:{port} is already in use ({exc.strerror}); choose another, or 0 for a free one"
            ) from exc
