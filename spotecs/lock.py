"""One run at a time per stack: a lock stored in AWS itself, so it needs no extra resource and
works for everyone who can reach the stack.

The lock is the SSM parameter `/spotecs/<stack>/lock` (names.lock_parameter) (a Standard parameter: free), created with
`Overwrite=False`: AWS creates it for exactly one caller and answers `ParameterAlreadyExists` to
every other, which is the atomic "write only if absent" a lock needs (PutParameter, AWS Systems
Manager API reference). Its value records who holds it (user, host, process, command, time) so a
refused run can name the holder. It is deleted on release, whatever ended the run; a lock left
by a killed process is broken with `spotecs force-unlock`.

`up`, `teardown`, `refresh-ami` and `drill` hold it (through `up.locked`); `status`, `--dry-run`
and `refresh-ami --check` take none.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from spotecs import names
from spotecs.aws import Aws, call
from spotecs.errors import AwsError, LockHeld, LockNotReleased, SpotecsError, lock_left_note


@dataclass(frozen=True)
class Holder:
    user: str
    host: str
    pid: int
    command: str
    since: str  # ISO 8601, UTC
    token: str  # tells this run's lock from one taken after a force-unlock

    @classmethod
    def me(cls, command: str) -> Holder:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
        return cls(
            user=user,
            host=socket.gethostname(),
            pid=os.getpid(),
            command=command,
            since=datetime.now(UTC).isoformat(timespec="seconds"),
            token=uuid.uuid4().hex,
        )

    @classmethod
    def parse(cls, value: str) -> Holder:
        try:
            data = json.loads(value)
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (ValueError, TypeError, KeyError):  # not written by this version: still name it
            return cls("unknown", "unknown", 0, value[:80], "", "")

    def describe(self, now: datetime | None = None) -> str:
        held = ""
        if self.since:
            seconds = ((now or datetime.now(UTC)) - datetime.fromisoformat(self.since)).total_seconds()
            held = f" for {_duration(seconds)}"
        return f"{self.user}@{self.host} (pid {self.pid}, `{self.command}`, since {self.since or '?'}){held}"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def acquire(aws: Aws, stack: str, command: str) -> Holder:
    """Take the stack's lock or raise LockHeld naming who holds it."""
    me = Holder.me(command)
    try:
        call(
            f"take the lock of stack {stack}",
            aws.client("ssm").put_parameter,
            Name=names.lock_parameter(stack),
            Value=json.dumps(asdict(me)),
            Type="String",
            Overwrite=False,
            Description=f"spotecs: a run on stack {stack} is in progress; spotecs force-unlock breaks it",
        )
    except AwsError as e:
        if e.code != "ParameterAlreadyExists":
            raise
        holder = read(aws, stack)
        raise LockHeld(stack, holder.describe() if holder else "another run (it has just ended: try again)") from None
    return me


def read(aws: Aws, stack: str) -> Holder | None:
    got = call(
        f"read the lock of stack {stack}",
        aws.client("ssm").get_parameter,
        missing=("ParameterNotFound",),
        Name=names.lock_parameter(stack),
    )
    return Holder.parse(got["Parameter"]["Value"]) if got else None


def release(aws: Aws, stack: str, me: Holder) -> None:
    """Delete the lock if it is still ours: after a force-unlock another run may hold it now."""
    holder = read(aws, stack)
    if holder is None or holder.token != me.token:
        return
    call(
        f"release the lock of stack {stack}",
        aws.client("ssm").delete_parameter,
        missing=("ParameterNotFound",),
        Name=names.lock_parameter(stack),
    )


def force_unlock(aws: Aws, stack: str, token: str) -> bool:
    """Break the lock if it is still the one the user was shown (same token); False otherwise."""
    holder = read(aws, stack)
    if holder is None or holder.token != token:
        return False
    call(
        f"delete the lock of stack {stack}",
        aws.client("ssm").delete_parameter,
        missing=("ParameterNotFound",),
        Name=names.lock_parameter(stack),
    )
    return True


@contextmanager
def stack_lock(aws: Aws, stack: str, command: str) -> Iterator[Holder]:
    """Hold the stack's lock for the block; released on success, failure and Ctrl-C."""
    me = acquire(aws, stack, command)
    try:
        yield me
    except BaseException as run_error:
        # The run's own error is the one to report; the user is told when the lock stays behind.
        try:
            release(aws, stack, me)
        except SpotecsError:
            run_error.add_note(lock_left_note(stack))
        raise
    try:
        release(aws, stack, me)
    except SpotecsError as e:
        raise LockNotReleased(stack, e) from e
