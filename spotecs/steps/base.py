"""The engine's contract (engine/contract.py) for spotecs: the run context steps receive, the
base class of resource steps and the base class of data sources.

A step is one AWS resource (or one tightly bound group). `read()` returns the live resource
normalised into the shape of `desired()`, plus extra keys that are outputs (ids, ARNs) and
are never diffed; keys starting with "_" are metadata (e.g. `_owned`). `read()` runs on a worker
thread and changes nothing, not even the step. Steps never print, prompt or sleep; they get
clients, outputs, waits and progress from `ctx`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

from spotecs import aws
from spotecs.aws import Aws
from spotecs.config import Stack
from spotecs.engine.model import Change, Outputs
from spotecs.errors import AwsError, WaitTimeout

# Seconds each kind of wait may take on real AWS (README, "Waits"). One figure for all does not
# fit: ECS may take up to 20 minutes to delete a capacity provider, and a first scale-out (alarm,
# launch, warm-up, health checks) more than 10, while an IAM or bucket-policy change that is
# not in force after two minutes will not be.
BUDGETS: dict[str, float] = {
    "instance profile propagation": 120,
    "access-log bucket policy": 120,
    "eventual consistency": 120,
    "service-linked role": 300,
    "load balancer active": 600,
    "load balancer deleted": 600,
    "capacity provider update": 300,
    "capacity provider deleted": 1200,
    "auto scaling group deleted": 900,
    "cluster empty": 900,
    "security group released": 900,
    "target group released": 300,
    "service deleted": 900,
    "service stable": 1800,
}
UNNAMED_BUDGET = 600.0
# Reads one step issues at once (Context.at_once), on top of the engine's own workers: more than
# any one call asks for (the orphan search's first reads: 9, and 3 more in a teardown), so none
# waits for a worker, which would add a round trip to it; bounded for a call that would ask more.
AT_ONCE = 32


@dataclass
class Timeouts:
    """Seconds. Each wait has its own budget (BUDGETS) and says what it is waiting for; `default`,
    when set, bounds every wait alike (tests, and a user who wants one figure)."""

    default: float | None = None
    delay: float = 5.0  # between polls; 0 in tests

    def budget(self, wait: str) -> float:
        if wait not in BUDGETS:  # a typo would silently get another wait's bound
            raise ValueError(f"no budget for a wait named {wait!r}")
        return self.default if self.default is not None else BUDGETS[wait]

    @property
    def fallback(self) -> float:
        return self.default if self.default is not None else UNNAMED_BUDGET


class Task:
    """Tells one piece of work from another for aws.Aws.acting_for (weakly referenced)."""


@dataclass
class Context(Outputs):
    stack: Stack
    aws: Aws
    timeouts: Timeouts = field(default_factory=Timeouts)
    wait_for_services: bool = True
    on_status: Callable[[str, str], None] = lambda key, status: None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    step_key: str = ""
    # The depth (aws.Call.depth) of the answers this view's work follows, for a thread that
    # has seen none: the reads of a plan start after the lock's calls, not before.
    _depth: int = 0
    # Set on each view (for_step): the run's own context goes on where its thread is.
    _task: Task | None = None
    _facts: dict[str, Any] = field(default_factory=dict)
    _fact_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- per-step view ---------------------------------------------------------
    def for_step(self, key: str) -> Context:
        """A view of this context bound to one step (for progress); state is shared."""
        view = Context.__new__(Context)
        view.__dict__.update(self.__dict__)
        view.step_key = key
        view._depth = self.aws.depth
        view._task = Task()
        return view

    def report(self, status: str) -> None:
        self.on_status(self.step_key, status)

    # -- AWS -------------------------------------------------------------------
    def act(self) -> None:
        """The calls this thread makes next are made for this view's step (aws.Call.step)."""
        self.aws.acting_for(self.step_key, self._depth, self._task)

    def client(self, service: str) -> Any:
        self.act()
        return self.aws.client(service)

    @property
    def region(self) -> str:
        return self.aws.region

    def call(self, intent: str, fn: Callable[..., Any], /, *, missing: Collection[str] = (), **kwargs: Any) -> Any:
        return aws.call(intent, fn, missing=missing, **kwargs)

    def retry(
        self,
        intent: str,
        fn: Callable[..., Any],
        /,
        *,
        codes: Collection[str],
        timeout: float | None = None,
        missing: Collection[str] = (),
        when: Callable[[AwsError], bool] | None = None,
        **kwargs: Any,
    ) -> Any:
        return aws.retry_on(
            intent,
            fn,
            codes=codes,
            timeout=timeout or self.timeouts.fallback,
            delay=self.timeouts.delay,
            report=self.report,
            missing=missing,
            when=when,
            stop=self.aws.stopping,
            **kwargs,
        )

    def until(
        self,
        what: str,
        attempt: Callable[[float], Any],
        *,
        hint: str | Callable[[], str],
        status: Callable[[], str] | None = None,
        budget: float | None = None,
    ) -> Any:
        """Run `attempt(budget)`: a retry, waiter or poll bounded by that many seconds. When it
        times out, say once what was awaited, where it stands now (`status`), and what to do."""
        seconds = budget or self.timeouts.fallback
        try:
            return attempt(seconds)
        except WaitTimeout:
            now = status() if status else ""
            raise WaitTimeout(f"{what} ({now})" if now else what, seconds, hint() if callable(hint) else hint) from None

    def paginate(self, intent: str, service: str, operation: str, key: str, **kwargs: Any) -> list[Any]:
        return list(aws.paginate(intent, self.client(service), operation, key, **kwargs))

    def read(
        self, intent: str, service: str, operation: str, /, *, missing: Collection[str] = (), **kwargs: Any
    ) -> Any:
        """A read call through the run's read layer (Aws.reading): asked once per plan, whoever asks."""
        self.act()
        return self.aws.read(intent, service, operation, missing=missing, **kwargs)

    def read_pages(self, intent: str, service: str, operation: str, key: str, **kwargs: Any) -> list[Any]:
        """`paginate` through the run's read layer."""
        self.act()
        return self.aws.read_pages(intent, service, operation, key, **kwargs)

    def wait(self, intent: str, service: str, waiter: Any, *, timeout: float | None = None, **kwargs: Any) -> None:
        self.report(f"waiting for {intent}")
        aws.wait(
            intent,
            self.client(service),
            waiter,
            delay=self.timeouts.delay,
            timeout=timeout or self.timeouts.fallback,
            **kwargs,
        )

    def poll(
        self, what: str, check: Callable[[], tuple[bool, str]], *, timeout: float | None = None, hint: str = ""
    ) -> None:
        aws.poll(
            what,
            check,
            timeout=timeout or self.timeouts.fallback,
            delay=self.timeouts.delay,
            report=self.report,
            hint=hint,
            stop=self.aws.stopping,
        )

    def at_once(self, *reads: Callable[[], Any]) -> list[Any]:
        """Independent reads at the same time (AWS answers them in one round trip's time, not one
        after another); their results in order, or the first error in order. The worker
        threads make their calls for this step (Call.step)."""
        # This thread goes on from here (Call.depth) even when its first calls are all made by others.
        self.act()
        if len(reads) <= 1:
            return [read() for read in reads]
        start = self.aws.depth

        def run(read: Callable[[], Any]) -> tuple[Any, int]:
            self.aws.acting_for(self.step_key, start, self._task)
            self.aws.at_depth(start)
            value = read()
            return value, self.aws.depth

        with ThreadPoolExecutor(max_workers=min(len(reads), AT_ONCE), thread_name_prefix="at-once") as pool:
            futures = [pool.submit(run, read) for read in reads]
        done = [f.result() for f in futures]
        # The caller goes on once every answer is in: after the longest chain of them.
        self.aws.at_depth(max(depth for _, depth in done))
        return [value for value, _ in done]

    def fact(self, name: str, compute: Callable[[], Any]) -> Any:
        """Memoise a run-wide lookup (account id, default VPC, instance types). Computed once,
        under a lock of its own: threads wanting other facts or outputs are not held up."""
        with self._lock:
            lock = self._fact_locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._facts:
                self._facts[name] = compute()
            return self._facts[name]

    @property
    def account_id(self) -> str:
        return str(
            self.fact(
                "account_id",
                lambda: self.call("look up the AWS account", self.client("sts").get_caller_identity)["Account"],
            )
        )

    # -- naming and tags -------------------------------------------------------
    @property
    def name(self) -> str:
        return self.stack.stack

    def tags(self, **extra: str) -> dict[str, str]:
        return aws.tag_dict(self.stack.stack, {**self.stack.tags, **extra})

    def client_token(self, key: str, request: dict[str, Any]) -> str:
        """The idempotency token for a create by step `key` sending `request` (aws.client_token)."""
        return aws.client_token(self.stack.stack, key, request)

    def owned(self, tags: dict[str, str]) -> bool:
        return aws.owned_by(tags, self.stack.stack)


# What one Resource Groups Tagging API read per plan finds by the stack's tag: the clusters of the
# stack, its load balancers, their listeners and rules, target groups, launch templates, security
# groups and log groups, task definitions, capacity providers, alarms and buckets. It gives their
# ownership tags to the steps (no tag call per resource) and the orphan search the ones the file
# no longer names (steps/orphans*.py). Each type is `service:resourceType` as in its ARNs, and one
# AWS does not know fails the whole read (ResourceTypeFilters, at most 100:
# https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html,
# https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html);
# each is one of AWS's tag-policy resource types
# (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_supported-resources-enforcement.html),
# `s3:bucket` the API reference's own example. Buckets of other regions are not listed ("resources
# that are located in the specified AWS Region"). The sandbox refuses others (fills_tagging.py).
TAGGED_TYPES = (
    "ecs:cluster",
    "ecs:task-definition",
    "ecs:capacity-provider",
    "cloudwatch:alarm",
    "s3:bucket",
    "elasticloadbalancing:loadbalancer",
    "elasticloadbalancing:listener",
    "elasticloadbalancing:listener-rule",
    "elasticloadbalancing:targetgroup",
    "ec2:launch-template",
    "ec2:security-group",
    "logs:log-group",
)

RESOURCES_PER_PAGE = 100  # GetResources' maximum (API_GetResources above)


def stack_tagged(ctx: Context) -> dict[str, dict[str, str]]:
    """ARN -> every tag, of each resource of TAGGED_TYPES carrying the stack's tag. The tagging
    API indexes a new tag a little after the resource has it: a resource missing here is asked
    directly, never taken for someone else's."""
    found = ctx.read_pages(
        "find the stack's resources by tag",
        "resourcegroupstaggingapi",
        "get_resources",
        "ResourceTagMappingList",
        TagFilters=[{"Key": aws.STACK_TAG, "Values": [ctx.name]}],
        ResourceTypeFilters=list(TAGGED_TYPES),
        # AWS's most per page: each task definition revision and alarm of a long-lived stack counts.
        ResourcesPerPage=RESOURCES_PER_PAGE,
    )
    return {r["ResourceARN"]: aws.tags_from_list(r.get("Tags")) for r in found}


def arn_resource(arn: str) -> str:
    """What an ARN names after its account: `launch-template/lt-0ab12`, `log-group:/ecs/demo/api`."""
    return arn.split(":", 5)[-1]


def stack_read_tags(ctx: Context, resource: str) -> dict[str, str] | None:
    """The tags of `resource` (what its ARN names after the account: arn_resource) from the
    stack's tagging-API read, while a plan shares its reads. None when that read lacks it
    (indexed late, or not the stack's) or outside a plan: the caller then asks the resource."""
    if not ctx.aws.sharing_reads:
        return None
    return next((tags for arn, tags in stack_tagged(ctx).items() if arn_resource(arn) == resource), None)


def retry_iam_propagation(ctx: Context, intent: str, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Call `fn`, retrying (bounded, with backoff) while AWS does not see the instance profile yet."""
    kwargs.setdefault("timeout", ctx.timeouts.budget("instance profile propagation"))
    return ctx.retry(intent, fn, codes=(), when=aws.instance_profile_not_ready, **kwargs)


class DataSource:
    """A fact read from AWS and never written (the network, the machine image): only `read`,
    and `check` for what the read found wrong with the stack file."""

    kind: ClassVar[str] = "data"

    def __init__(self, key: str, name: str, depends_on: Collection[str] = ()) -> None:
        self.key = key
        self.name = name
        self.depends_on = tuple(depends_on)

    def read(self, ctx: Context) -> dict[str, Any] | None:
        raise NotImplementedError

    def check(self, ctx: Context, current: dict[str, Any] | None) -> list[str]:
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"


class Step:
    """A resource step. Subclasses set the class attributes and implement the five methods."""

    kind: ClassVar[str] = "resource"
    replace_on: ClassVar[frozenset[str]] = frozenset()
    versioned: ClassVar[bool] = False
    # For versioned steps: outputs that change with each new version (e.g. a revision ARN).
    version_outputs: ClassVar[frozenset[str]] = frozenset()
    # Keys of orphans (resources the file no longer names) carry a prefix: see steps/orphans.py.
    key_prefix: ClassVar[str] = ""
    # Upstreams (by key, or by kind: the key before ":") this resource is bound to for its
    # life: when one is replaced, this one goes with it (a listener with its load balancer) or
    # stays attached to the old one, so the plan replaces it too, in the same run.
    binds_to: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, key: str, name: str, depends_on: Collection[str] = ()) -> None:
        self.key = f"{self.key_prefix}{key}"
        self.name = name
        self.depends_on = tuple(depends_on)

    def desired(self, ctx: Context) -> dict[str, Any]:
        raise NotImplementedError

    def read(self, ctx: Context) -> dict[str, Any] | None:
        raise NotImplementedError

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        raise NotImplementedError

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        raise NotImplementedError

    def replace(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        """Default: delete, then create. Steps whose dependants block deletion override this."""
        self.delete(ctx, current)
        return self.create(ctx, desired)

    def check(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
        """Problems that make the stack unworkable, found at plan time before any write."""
        return []

    def note(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None) -> str:
        """A fact worth showing beside this step in the plan that is not a change (e.g. a newer
        AMI is available); "" for none."""
        return ""

    def notes(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
        """Values the file sets that something else owns on AWS, each saying who (e.g. a desired
        count under auto scaling), and what the step's change does beyond the resource itself
        (the running instances a group's tags edit re-tags): shown in the plan, never a change."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"


# What `steps.build` returns and the engine takes: resources and data sources together (a DAG).
Node = Step | DataSource
