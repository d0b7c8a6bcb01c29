"""`spotecs up`: load, plan, show, confirm, apply. Also the shared run set-up that `teardown`
uses (one Aws session, the step list, the context)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from spotecs import config
from spotecs.aws import Aws, AwsOptions
from spotecs.engine.apply import Result, apply
from spotecs.engine.model import Action, Change, Plan
from spotecs.engine.plan import plan, read_all, to_read
from spotecs.errors import ApplyFailed, Cancelled, CheckError, Interrupted, UsageError
from spotecs.lock import stack_lock
from spotecs.render import Env, ProgressView, json_document, result_doc, result_text
from spotecs.render_plan import plan_doc, plan_text, warm_up
from spotecs.steps import build, orphans, service_linked_roles
from spotecs.steps.access_log_bucket import AccessLogBucket
from spotecs.steps.base import Context, Node, Timeouts
from spotecs.steps.log_group import LogGroup


@dataclass(frozen=True)
class RunOptions:
    file: Path
    aws: AwsOptions
    yes: bool = False
    dry_run: bool = False
    wait: bool = True
    output: str = "text"


@dataclass
class Run:
    stack: config.Stack
    aws: Aws
    ctx: Context
    steps: Sequence[Node]

    @property
    def region(self) -> str:
        return self.aws.region


# The services every plan reads (tests/test_calls.py): their clients are made before the run's
# first call (Aws.prepare_clients), not by the plan's readers, which would wait for them.
PLAN_SERVICES = (
    "ecs",
    "ec2",
    "elbv2",
    "iam",
    "logs",
    "autoscaling",
    "application-autoscaling",
    "resourcegroupstaggingapi",
    "ssm",
)


def plan_services(stack: config.Stack) -> tuple[str, ...]:
    """PLAN_SERVICES and those only some stacks' plans read: the certificate's (ACM), the
    access-log bucket's (STS for its name, S3), the step policies' alarms (CloudWatch)."""
    logs = stack.load_balancer.access_logs
    extra = {
        "acm": bool(stack.load_balancer.certificate_arn),
        "sts": logs is not None and logs.bucket is None,
        "s3": logs is not None,
        "cloudwatch": any(s.scaling is not None and s.scaling.step_scaling for s in stack.services.values()),
    }
    return (*PLAN_SERVICES, *(service for service, needed in extra.items() if needed))


def prepare(
    opts: RunOptions,
    timeouts: Timeouts | None = None,
    services: Sequence[str] | Callable[[config.Stack], Sequence[str]] = (),
) -> Run:
    """Everything before the first AWS call: a bad stack file fails here, with exit 2. The
    clients of `services` (or of those it gives for the stack) are made here too."""
    stack = config.load(opts.file)
    aws_opts = opts.aws
    if aws_opts.region is None and stack.region:
        aws_opts = AwsOptions(aws_opts.profile, stack.region, aws_opts.endpoint_url, aws_opts.max_attempts)
    aws = Aws(aws_opts)
    aws.check_options()
    config.check_region(stack, aws.region)
    aws.prepare_clients(services(stack) if callable(services) else services)
    ctx = Context(stack=stack, aws=aws, timeouts=timeouts or Timeouts(), wait_for_services=opts.wait)
    return Run(stack, aws, ctx, build(stack, aws.region))


def confirm(env: Env, opts: RunOptions, question: str, verb: str = "Apply", what: str = "apply") -> None:
    """Ask before any write. `verb` names the command in the cancellation ("Apply cancelled.",
    "Teardown cancelled.", as Terraform words them), `what` the refusal's "--yes to <what>"."""
    if opts.yes:
        return
    if not env.stdin_isatty:
        raise UsageError(f"refusing to change AWS without confirmation: stdin is not a terminal; pass --yes to {what}")
    if not env.ask(question):
        raise Cancelled(f"{verb} cancelled.")


def execute(console: Console, run: Run, the_plan: Plan, verb: str, doc: dict[str, Any]) -> Result:
    """Apply with live progress on `console`; the result goes into the JSON document too."""
    view = ProgressView(console)
    run.ctx.on_status = view.on_status
    stop = run.aws.stopping

    def notice() -> None:
        view.say(
            "Interrupted: no new step starts; the steps running finish or stop at their next call"
            " (Ctrl-C again to stop at once)."
        )

    with view.running(), first_ctrl_c_stops(stop, notice):
        result = apply(the_plan, run.steps, run.ctx, on_event=view.on_event, stop=stop)
    doc["result"] = result_doc(the_plan, result)
    result_text(console, the_plan, result, verb)
    again = "run the same command again to continue from where it stopped"
    if result.interrupted:
        raise Interrupted(f"{verb.lower()} interrupted: {again}")
    if not result.ok:
        raise ApplyFailed(f"{verb.lower()} did not finish: {again}")
    return result


@contextmanager
def first_ctrl_c_stops(stop: threading.Event, notice: Callable[[], None]) -> Iterator[None]:
    """The first Ctrl-C sets `stop` (no new step or AWS call starts, waits end); the second
    raises KeyboardInterrupt at once. Signals reach the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        notice()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def locked(run: Run, opts: RunOptions, command: str) -> AbstractContextManager[object]:
    """The stack's lock (lock.py) for a run that may write; a dry run takes none."""
    if opts.dry_run:
        return nullcontext()
    return stack_lock(run.aws, run.stack.stack, f"spotecs {command} -f {opts.file}")


def with_orphans(run: Run, *, destroy: bool = False) -> None:
    """Add what the stack owns but its file no longer names, as deletions (steps/orphans.py)."""
    run.steps = [*run.steps, *orphans.find(run.ctx, run.steps, destroy=destroy)]


def plan_run(run: Run, *, destroy: bool = False) -> Plan:
    """The plan, with what the stack owns but its file no longer names as deletions (`with_orphans`).
    The orphan search runs beside the steps' reads, not before them: neither waits for the
    other's answers, and the read layer (Aws.reading) lets them share their listings. A problem
    the steps' checks found names the stack file's line of its field."""
    ctx = run.ctx
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="orphans") as search:
        found = search.submit(orphans.find, ctx.for_step(""), run.steps, destroy=destroy)
        # On the same thread once the search is done: while the plan waits for its longest chain.
        search.submit(warm_up)
        currents = read_all(to_read(run.steps, destroy=destroy), ctx)
    run.steps = [*run.steps, *found.result()]
    try:
        return plan(run.steps, ctx, destroy=destroy, currents=currents)
    except CheckError as e:
        raise CheckError([run.stack.cite_problem(p) for p in e.problems]) from None


def up(env: Env, opts: RunOptions, timeouts: Timeouts | None = None, *, keep_logs: bool = False) -> Plan:
    with json_document(env, opts.output == "json", command="up") as doc:
        console = env.human(opts.output)
        run = prepare(opts, timeouts, plan_services)
        doc.update(stack=run.stack.stack, region=run.region)
        with locked(run, opts, "up"):
            with run.aws.reading():
                the_plan = plan_run(run)
            if keep_logs:
                keep_the_logs(run, the_plan)
            the_plan.warnings = run.stack.warnings()
            if the_plan.has_changes:
                the_plan.warnings += service_linked_roles.plan_notes(run.ctx)
            doc.update(plan_doc(the_plan), result=None)
            if opts.output != "json":
                plan_text(console, the_plan, run.stack.stack, run.region)
            # A service the file dropped or renamed takes its log group with it, access logs
            # turned off their bucket.
            warn_deleted_logs(console, run, the_plan)
            if opts.dry_run:
                return the_plan
            if the_plan.has_changes:
                confirm(env, opts, "\nApply these changes?")
                # Before the first write: a caller who may not create them stops here, nothing built.
                service_linked_roles.ensure(run.ctx)
                execute(console, run, the_plan, "Apply", doc)
        url = run.ctx.outputs.get("load-balancer", {}).get("url")
        if url:
            doc["url"] = url
            console.print(f"Load balancer: {url}", markup=False)
        return the_plan


def holds_logs(step: Node) -> bool:
    """The only data a stack keeps: its services' log groups and its load balancer's access logs."""
    return isinstance(step, LogGroup | AccessLogBucket)


KEPT_LOGS = "kept (--keep-logs)"


def _deletes_logs(run: Run) -> Callable[[Change], bool]:
    """Whether a change of the plan deletes logs."""
    logs = {s.key for s in run.steps if holds_logs(s)}
    return lambda c: c.key in logs and c.action is Action.DELETE


def keep_the_logs(run: Run, the_plan: Plan) -> None:
    """`--keep-logs`: what holds logs is left alone rather than deleted, and said so. Not a change,
    so a plan keeping them has none; the next plan without the flag deletes them again."""
    deletes = _deletes_logs(run)
    the_plan.changes = [replace(c, action=Action.NOOP, note=KEPT_LOGS) if deletes(c) else c for c in the_plan.changes]


def warn_deleted_logs(console: Console, run: Run, the_plan: Plan) -> None:
    """Say which logs the plan deletes, before the question: they are the stack's only data."""
    deletes = _deletes_logs(run)
    doomed = [f"{c.kind} {c.name}" for c in the_plan.changes if deletes(c)]
    if doomed:
        console.print(
            f"[yellow]The logs in {escape(', '.join(doomed))} will be deleted[/] (--keep-logs keeps them).",
            highlight=False,
        )
