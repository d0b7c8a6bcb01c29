"""`spotecs drill`: rehearse a spot interruption on the stack and report how it recovered.

Picks running spot instances of the stack's group (those running the most service tasks first,
as they make the rehearsal meaningful), refuses when the rest of the cluster could not keep every
service at its minimum healthy share, shows the plan and asks. Then makes sure the stack's FIS
experiment template (pointed at the chosen instances) and FIS role exist (steps/fis.py), starts
the experiment, and watches the fleet until every service is back (drill_watch.py), probing the
service over HTTP meanwhile. Ctrl-C stops the experiment.
"""

from __future__ import annotations

import math
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from spotecs import names
from spotecs.aws import AwsOptions, call
from spotecs.drill_report import plan_doc, print_plan, print_report, report_doc
from spotecs.drill_watch import PHASES, Fleet, InstanceView, Probe, ProbeResult, Watch, read_fleet
from spotecs.engine.apply import apply
from spotecs.engine.plan import plan
from spotecs.errors import AwsError, Outcome, SpotecsError, UsageError
from spotecs.render import Env, json_document
from spotecs.steps import fis
from spotecs.up import Run, RunOptions, confirm, locked, prepare

# Recovery budget: the 2-minute notice, then a replacement instance launched, booted and
# registered (a few minutes), then tasks placed and healthy. Beyond it, the drill fails.
DEFAULT_BUDGET_SECONDS = 15 * 60
POLL_SECONDS = 1.0
TERMINAL = ("completed", "stopped", "failed", "cancelled")


class DrillRefused(SpotecsError):
    """The drill would take a service below its minimum, or there is nothing to interrupt."""


class DrillFailed(SpotecsError):
    """The drill ran, and something did not recover as it should (the report says what)."""


@dataclass(frozen=True)
class DrillOptions:
    file: Path
    aws: AwsOptions
    instances: int | None = None
    percent: int | None = None
    probe: str | None = None
    probe_lb: bool = False
    yes: bool = False
    dry_run: bool = False
    output: str = "text"
    budget: int = DEFAULT_BUDGET_SECONDS


@dataclass
class DrillPlan:
    chosen: list[InstanceView]
    fleet: Fleet
    probe_url: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        """No service task runs on the chosen instances: nothing there to drain."""
        return not any(s.tasks_by_instance.get(i.id) for s in self.fleet.services.values() for i in self.chosen)


# Looks, a poll apart, for the experiment's final state once the stack has recovered.
FINAL_STATE_LOOKS = 30


def parse_budget(text: str) -> int:
    unit = {"s": 1, "m": 60, "h": 3600}.get(text[-1:], 0)
    number = text[:-1] if unit else text
    if not number.isdigit() or int(number) == 0:
        raise UsageError(f"--budget: '{text}' is not a duration like 900, 90s or 15m")
    return int(number) * (unit or 1)


def check_options(opts: DrillOptions) -> None:
    """Bad options fail here, before the stack file is read or AWS is called."""
    if opts.instances is not None and opts.percent is not None:
        raise UsageError("--instances and --percent cannot be used together")
    if opts.instances is not None and opts.instances < 1:
        raise UsageError("--instances: must be at least 1")
    if opts.percent is not None and not 1 <= opts.percent <= 100:
        raise UsageError("--percent: must be between 1 and 100")
    if opts.probe and opts.probe_lb:
        raise UsageError("--probe and --probe-lb cannot be used together")
    if opts.probe:
        url = urllib.parse.urlparse(opts.probe)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise UsageError(f"--probe: '{opts.probe}' is not an http:// or https:// URL")
    if opts.output == "json" and not (opts.yes or opts.dry_run):
        raise UsageError("--output json needs --yes or --dry-run (the drill cannot be confirmed in JSON)")


def choose(fleet: Fleet, count: int | None, percent: int | None) -> list[InstanceView]:
    """The spot instances to interrupt, or DrillRefused explaining why none can be."""
    spot = [i for i in fleet.instances.values() if i.spot and i.state == "running" and i.container_status == "ACTIVE"]
    if not spot:
        raise DrillRefused("no running spot instance is registered in the cluster: nothing to interrupt")
    wanted = count if count is not None else max(1, math.floor(len(spot) * (percent or 0) / 100)) if percent else 1
    if wanted > len(spot):
        raise DrillRefused(f"only {len(spot)} running spot instance(s) in the cluster; cannot interrupt {wanted}")

    def tasks_on(i: InstanceView) -> int:
        return sum(s.tasks_by_instance.get(i.id, 0) for s in fleet.services.values())

    return sorted(spot, key=lambda i: (-tasks_on(i), i.id))[:wanted]


def refusals(fleet: Fleet, chosen: list[InstanceView]) -> list[str]:
    """Services that could not keep their minimum healthy share while `chosen` are interrupted:
    the tasks they would lose beyond what the minimum allows must fit on the other instances."""
    gone = {i.id for i in chosen}
    room = {
        i.id: [i.free_cpu, i.free_memory]
        for i in fleet.instances.values()
        if i.id not in gone and i.container_status == "ACTIVE" and i.state == "running"
    }
    problems = []
    for s in sorted(fleet.services.values(), key=lambda s: s.name):
        lost = sum(s.tasks_by_instance.get(i, 0) for i in gone)
        needed = max(0, s.min_healthy - (s.running - lost))
        placed = 0
        for _ in range(needed):
            host = next((h for h, (cpu, mem) in sorted(room.items()) if cpu >= s.cpu and mem >= s.memory), None)
            if host is None:
                break
            room[host][0] -= s.cpu
            room[host][1] -= s.memory
            placed += 1
        if placed < needed:
            problems.append(
                f"service {s.name} would fall to {s.running - lost + placed} running task(s), below its minimum "
                f"healthy {s.min_healthy} ({s.min_healthy_percent}% of {s.desired}): the other instances have room "
                f"for {placed} of the {needed} replacement(s) it needs first"
            )
    return problems


def _group_and_services(run: Run) -> tuple[str, str, dict[str, str]]:
    stack = run.stack
    services = {s: names.service(stack.stack, s) for s in sorted(stack.services)}
    return names.auto_scaling_group(stack.stack), stack.cluster_name, services


def lb_url(run: Run) -> str:
    name = names.load_balancer(run.stack.stack)
    found = call(
        f"describe load balancer {name}",
        run.aws.client("elbv2").describe_load_balancers,
        missing=("LoadBalancerNotFound",),
        Names=[name],
    )
    if not found or not found.get("LoadBalancers"):
        raise AwsError(f"find load balancer {name} for --probe-lb", "it does not exist (is the stack up?)")
    return f"http://{found['LoadBalancers'][0]['DNSName']}/"


def prepare_plan(run: Run, opts: DrillOptions) -> DrillPlan:
    group, cluster, services = _group_and_services(run)
    fleet = read_fleet(run.ctx, group, cluster, services, {})
    chosen = choose(fleet, opts.instances, opts.percent)
    problems = refusals(fleet, chosen)
    if problems:
        raise DrillRefused(
            "refusing to interrupt " + ", ".join(i.id for i in chosen) + ":\n  - " + "\n  - ".join(problems)
        )
    url = opts.probe or (lb_url(run) if opts.probe_lb else None)
    the_plan = DrillPlan(chosen, fleet, url)
    if the_plan.idle:
        the_plan.notes.append(
            "no service task runs on the chosen spot instance(s) (they run elsewhere, e.g. on the on-demand "
            "instances): this drill rehearses the replacement only, not the draining of tasks"
        )
    return the_plan


def ensure_fis(run: Run, chosen: list[InstanceView]) -> list[str]:
    """Create or point the stack's FIS role and template at `chosen`; what was done, as lines."""
    steps = fis.steps(run.stack.stack, run.region, [i.arn for i in chosen])
    the_plan = plan(steps, run.ctx)
    result = apply(the_plan, steps, run.ctx)
    if not result.ok:
        key, error = next(iter(result.failed.items()))
        raise AwsError(f"prepare the drill's {key}", str(error))
    return [f"{c.action.past} {c.kind} {c.name}" for c in the_plan.changes if c.is_change]


def drill(env: Env, opts: DrillOptions) -> Outcome:
    check_options(opts)
    with json_document(env, opts.output == "json", command="drill") as doc:
        run_opts = RunOptions(file=opts.file, aws=opts.aws, yes=opts.yes, dry_run=opts.dry_run, output=opts.output)
        run = prepare(run_opts)
        doc.update(stack=run.stack.stack, region=run.region)
        with locked(run, run_opts, "drill"):  # no lock for --dry-run
            the_plan = prepare_plan(run, opts)
            doc["plan"] = plan_doc(the_plan)
            if opts.output == "text":
                print_plan(env.console, run.stack.stack, the_plan)
            if opts.dry_run:
                return Outcome.DONE
            confirm(env, run_opts, "\nInterrupt these instances?", verb="Drill", what="drill")
            for line in ensure_fis(run, the_plan.chosen):
                env.err.print(line, markup=False, highlight=False)
            outcome = execute(env, run, the_plan, opts)
        doc.update(report_doc(outcome))
        if opts.output != "json":
            print_report(env.console, outcome)
        if outcome.interrupted:
            return Outcome.DRILL_STOPPED  # the experiment is stopped and the report printed: exit 130
        if outcome.problems:
            raise DrillFailed("the drill found problems (see above)")
        return Outcome.DONE


@dataclass
class DrillOutcome:
    experiment_id: str
    status: str
    reason: str
    watch: Watch
    elapsed: float
    budget: int
    probe: ProbeResult | None
    services: dict[str, tuple[int, int]]  # name -> (min running seen, min healthy)
    problems: list[str]
    interrupted: bool = False


def execute(env: Env, run: Run, the_plan: DrillPlan, opts: DrillOptions) -> DrillOutcome:
    fis_client = run.aws.client("fis")
    template = fis.find_template(run.ctx, names.fis_template(run.stack.stack))
    assert template is not None  # ensure_fis made it
    started = call(
        "start the FIS experiment",
        fis_client.start_experiment,
        clientToken=str(uuid.uuid4()),
        experimentTemplateId=template["id"],
        tags=run.ctx.tags(),
    )["experiment"]
    experiment_id = started["id"]
    env.err.print(f"Started FIS experiment {experiment_id}.", markup=False, highlight=False)
    group, cluster, services = _group_and_services(run)
    sizes: dict[str, tuple[int, int]] = {}  # task definition -> reservation, read once
    watch = Watch([i.id for i in the_plan.chosen], set(the_plan.fleet.instances), idle=the_plan.idle)
    probe = Probe(the_plan.probe_url) if the_plan.probe_url else None
    if probe:
        probe.start()
    start = time.monotonic()
    status, reason, interrupted = started["state"]["status"], started["state"].get("reason", ""), False
    last_said = 0.0
    try:
        while True:
            state = call("describe the FIS experiment", fis_client.get_experiment, id=experiment_id)["experiment"]
            status, reason = state["state"]["status"], state["state"].get("reason", "")
            elapsed = time.monotonic() - start
            if status in ("failed", "stopped", "cancelled"):
                break
            reached = set(watch.times)
            fleet = read_fleet(run.ctx, group, cluster, services, sizes)
            elapsed = time.monotonic() - start  # a phase is timed when it is seen, after the reads
            watch.see(elapsed, fleet, status)
            for line in progress_lines(watch, reached, elapsed, last_said):
                env.err.print(line, markup=False, highlight=False)
                last_said = elapsed
            if watch.done or elapsed > opts.budget:
                break
            time.sleep(POLL_SECONDS)
        for _ in range(FINAL_STATE_LOOKS):
            # Recovery needs the termination that ends the experiment: it ends within moments.
            if not (watch.done and status == "running"):
                break
            time.sleep(POLL_SECONDS)
            state = call("describe the FIS experiment", fis_client.get_experiment, id=experiment_id)["experiment"]
            status, reason = state["state"]["status"], state["state"].get("reason", "")
    except KeyboardInterrupt:
        interrupted = True
        call("stop the FIS experiment", fis_client.stop_experiment, id=experiment_id)
        env.err.print(f"Interrupted: stopped FIS experiment {experiment_id} (StopExperiment).", markup=False)
    finally:
        result = probe.stop() if probe else None
    elapsed = time.monotonic() - start
    problems = list(watch.problems)
    if status in ("failed", "stopped", "cancelled"):
        problems.insert(0, f"the FIS experiment {status}: {reason}")
    elif interrupted:
        problems.insert(0, "interrupted with Ctrl-C before the stack recovered")
    elif not watch.done:
        missing = [text for phase, text in PHASES.items() if phase not in watch.times and watch.applies(phase)]
        problems.append(f"not recovered within the {opts.budget}s budget; never seen: {', '.join(missing)}")
    minimums = {
        s.name: (watch.min_running.get(s.name, s.running), s.min_healthy) for s in the_plan.fleet.services.values()
    }
    for name, (seen, floor) in sorted(minimums.items()):
        if seen < floor:
            problems.append(f"service {name} fell to {seen} running task(s), below its minimum healthy {floor}")
    if result and result.failures:
        problems.append(
            f"{result.failures} of {result.requests} probe request(s) failed "
            f"(longest streak {result.longest_failure_streak})"
        )
    return DrillOutcome(
        experiment_id, status, reason, watch, elapsed, opts.budget, result, minimums, problems, interrupted
    )


def progress_lines(watch: Watch, before: set[str], elapsed: float, last_said: float) -> list[str]:
    """A line per phase reached since the last look; else one every 10 s saying what is awaited."""
    lines = [f"  {watch.times[p]:6.1f}s  {text}" for p, text in PHASES.items() if p in watch.times and p not in before]
    if not lines and elapsed - last_said >= 10:
        pending = next((text for phase, text in PHASES.items() if phase not in watch.times), "done")
        lines.append(f"  {elapsed:6.1f}s  still waiting for: {pending}")
    return lines
