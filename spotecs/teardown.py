"""`spotecs teardown`: the `up` DAG, plus what the stack owns but its file no longer names
(steps/orphans.py), planned with every step deleted, shown in deletion order (the `up` order
reversed), confirmed, and applied in reverse order. Only resources carrying the stack's tags are
deleted; the others are reported and left alone. Each step's `delete` is idempotent and every
wait is bounded, so a half-failed teardown (or `up`) is finished by running teardown again."""

from __future__ import annotations

from spotecs.engine.model import Plan
from spotecs.render import Env, json_document
from spotecs.render_plan import notes, plan_doc, plan_text
from spotecs.steps.base import Timeouts
from spotecs.steps.log_group import ContainerInsightsLogGroup
from spotecs.up import (
    KEPT_LOGS,
    PLAN_SERVICES,
    Run,
    RunOptions,
    confirm,
    execute,
    keep_the_logs,
    locked,
    plan_run,
    prepare,
    warn_deleted_logs,
)


def with_container_insights(run: Run) -> None:
    """The cluster's Container Insights log group, deleted after the cluster (made its upstream in
    the DAG, so the reversed walk deletes the cluster first)."""
    for s in run.steps:
        if s.key == "cluster":
            insights = ContainerInsightsLogGroup(s.name)
            s.depends_on = (*s.depends_on, insights.key)
            run.steps = [insights, *run.steps]
            return


# A teardown's plan also looks for the drill's experiment template and role and the access-log
# bucket, and deleting scaling reads its alarms (up.PLAN_SERVICES).
TEARDOWN_SERVICES = (*PLAN_SERVICES, "fis", "sts", "s3", "cloudwatch")


def teardown(env: Env, opts: RunOptions, *, keep_logs: bool = False, timeouts: Timeouts | None = None) -> Plan:
    with json_document(env, opts.output == "json", command="teardown") as doc:
        console = env.human(opts.output)
        run = prepare(opts, timeouts, TEARDOWN_SERVICES)
        doc.update(stack=run.stack.stack, region=run.region)
        with locked(run, opts, "teardown"):
            with_container_insights(run)
            with run.aws.reading():
                the_plan = plan_run(run, destroy=True)
            # Shown as it will run: dependants first (the plan is in `up` order; apply keys by step).
            the_plan.changes.reverse()
            if keep_logs:
                keep_the_logs(run, the_plan)
            doc.update(plan_doc(the_plan), result=None)
            if not the_plan.has_changes:
                notes(console, the_plan)
                has = (
                    f"nothing of its own in {run.region} but the logs kept above"
                    if any(c.note == KEPT_LOGS for c in the_plan.changes)
                    else f"no resources of its own in {run.region}"
                )
                console.print(f"Nothing to delete: stack {run.stack.stack} has {has}.", markup=False)
                return the_plan
            if opts.output != "json":
                plan_text(console, the_plan, run.stack.stack, run.region)
            warn_deleted_logs(console, run, the_plan)
            if opts.dry_run:
                return the_plan
            confirm(env, opts, f"\nDelete stack {run.stack.stack} in {run.region}?", "Teardown", "delete")
            execute(console, run, the_plan, "Teardown", doc)
            return the_plan
