"""`spotecs force-unlock`: break the stack's run lock (lock.py) after a run was killed, as
`terraform force-unlock` does. It shows who holds the lock and for how long, asks, and deletes
the lock only if it is still the one shown."""

from __future__ import annotations

from spotecs import lock
from spotecs.render import Env
from spotecs.up import RunOptions, confirm, prepare


def force_unlock(env: Env, opts: RunOptions) -> None:
    run = prepare(opts)
    stack = run.stack.stack
    holder = lock.read(run.aws, stack)
    if holder is None:
        env.console.print(f"Stack {stack} in {run.region} is not locked.", markup=False)
        return
    env.console.print(f"Stack {stack} in {run.region} is locked by {holder.describe()}.", markup=False, soft_wrap=True)
    confirm(
        env,
        opts,
        "\nBreak the lock? Do it only if that run is no longer running.",
        "Force-unlock",
        "break the lock",
    )
    if not lock.force_unlock(run.aws, stack, holder.token):
        env.console.print(f"The lock of stack {stack} changed meanwhile; nothing was deleted.", markup=False)
        return
    env.console.print(f"Lock of stack {stack} broken. The next up or teardown continues from AWS as it is.")
