"""`spotecs teardown`: the `up` DAG planned with every step deleted, shown, confirmed, and
applied in reverse order. Only resources carrying the stack's tags are deleted; the others are
reported and left alone. Each step's `delete` is idempotent, so a half-failed teardown (or
`up`) is finished by running teardown again."""

from __future__ import annotations

from dataclasses import replace

from spotecs.engine.model import Action, Plan
from spotecs.engine.plan import plan
from spotecs.render import Env, plan_json, plan_text
from spotecs.steps.base import Timeouts
from spotecs.steps.log_group import LogGroup
from spotecs.up import RunOptions, confirm, execute, prepare

KEPT_LOGS = "kept (--keep-logs)"


def teardown(env: Env, opts: RunOptions, *, keep_logs: bool = False, timeouts: Timeouts | None = None) -> Plan:
    run = prepare(opts, timeouts)
    the_plan = plan(run.steps, run.ctx, destroy=True)
    if keep_logs:
        logs = {s.key for s in run.steps if isinstance(s, LogGroup)}
        the_plan.changes = [replace(c, action=Action.NOOP, note=KEPT_LOGS)
                            if c.key in logs and c.action is Action.DELETE else c for c in the_plan.changes]
    if opts.output == "json":
        env.console.print_json(plan_json(the_plan))
    elif not the_plan.has_changes and not any(c.note for c in the_plan.changes):
        env.console.print(f"Nothing to delete: stack {run.stack.stack} has no resources in {run.region}.")
        return the_plan
    else:
        plan_text(env.console, the_plan, run.stack.stack, run.region)
        doomed_logs = [c.name for c in the_plan.changes if c.kind == LogGroup.kind and c.action is Action.DELETE]
        if doomed_logs:
            env.console.print(f"[yellow]The logs in {', '.join(doomed_logs)} will be deleted[/] "
                              "(--keep-logs keeps them).")
    if opts.dry_run or not the_plan.has_changes:
        return the_plan
    confirm(env, opts, f"\nDelete stack {run.stack.stack} in {run.region}?")
    execute(env, run, the_plan, "Teardown")
    return the_plan
