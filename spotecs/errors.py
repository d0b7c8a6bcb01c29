"""The exception types and command outcomes the CLI turns into messages and exit codes, in one
place (`cli.exit_code`)."""

from __future__ import annotations

from enum import Enum, IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # AWS or runtime failure; also a declined confirmation (as in Terraform)
    USAGE = 2  # bad usage or bad config: nothing was called
    # refresh-ami --check: a newer AMI is available (the template or an instance runs an older one).
    NEWER_AMI = 3
    INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, the shell's convention


class Outcome(Enum):
    """What a command found, when that is not plain success and not an error: the CLI turns it
    into an exit code (`cli.exit_code`). A command returns one instead of exiting."""

    DONE = "done"
    # `up --dry-run --detailed-exitcode`: the plan has changes (exit 2, like
    # `terraform plan -detailed-exitcode`); without the flag it is plain success.
    CHANGES_PRESENT = "changes present"
    # `logs --follow` ended by Ctrl-C, its normal end: 130 as the shell expects, no message.
    FOLLOW_ENDED = "follow ended"
    # `refresh-ami --check`: the launch template or an instance runs an older AMI than the latest.
    NEWER_AMI = "newer AMI available"
    # `drill` stopped by Ctrl-C: its FIS experiment was stopped and the report says so; 130.
    DRILL_STOPPED = "drill stopped"


class SpotecsError(Exception):
    """Base class: every error the CLI knows how to report in one line."""

    exit_code: ExitCode = ExitCode.FAILURE
    # Printed before the message; a cancellation is not an error to shout about.
    prefix: str = "Error: "


class ConfigError(SpotecsError):
    """The stack file is missing, unparsable or invalid. Raised before any AWS call."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, path: str = "", file: str = "", line: int | None = None):
        self.path = path
        self.file = file
        self.line = line
        self.message = message
        # Every problem of the file, this one first; one line each.
        self.errors: list[ConfigError] = [self]
        super().__init__(self.render())

    @classmethod
    def of(cls, errors: list[ConfigError]) -> ConfigError:
        """One error carrying all of `errors` (the first is its path, line and message)."""
        first = errors[0]
        if len(errors) > 1:
            first.errors = list(errors)
            first.args = (str(first),)
        return first

    def render(self) -> str:
        where = self.file
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        parts = [p for p in (where, self.path) if p]
        return ": ".join([*parts, self.message])

    def __str__(self) -> str:
        if len(self.errors) == 1:
            return self.render()
        head = f"{len(self.errors)} problems in {self.file or 'the stack file'}:"
        return "\n".join([head, *(f"  {e.render()}" for e in self.errors)])


class CheckError(SpotecsError):
    """A pre-flight check found the stack cannot work (e.g. a task larger than any instance).

    Raised after reads but before any AWS write; carries every problem found, not just the first.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class UsageError(SpotecsError):
    exit_code = ExitCode.USAGE


class AwsError(SpotecsError):
    """An AWS call failed. The message reads 'Failed to <intent>: <AWS message>'."""

    def __init__(self, intent: str, detail: str, code: str = ""):
        self.intent = intent
        self.detail = detail
        self.code = code
        super().__init__(f"Failed to {intent}: {detail}")


class WaitTimeout(SpotecsError):
    def __init__(self, what: str, seconds: float, hint: str = ""):
        msg = f"Timed out after {seconds:.0f}s waiting for {what}"
        super().__init__(f"{msg}. {hint}" if hint else msg)


class ApplyFailed(SpotecsError):
    """Some steps failed while applying; the engine already reported which."""


class Cancelled(SpotecsError):
    """The user declined the confirmation: nothing was changed. Exit 1, as Terraform does."""

    prefix = ""


class SandboxError(SpotecsError):
    """The local sandbox cannot start (its port is taken)."""


class SandboxUnavailable(SandboxError):
    """The sandbox's optional extra (moto) is not installed: the option cannot be used here."""

    exit_code = ExitCode.USAGE


class Interrupted(SpotecsError):
    """Ctrl-C: the run stopped starting new steps and let the calls in flight finish."""

    exit_code = ExitCode.INTERRUPTED


def lock_left_note(stack: str) -> str:
    return (
        f"The lock of stack {stack} could not be released and is still held by this run, which has ended: "
        "once no other run is active, break it with: spotecs force-unlock"
    )


class LockNotReleased(SpotecsError):
    """The run finished but releasing its lock failed: the next run would be refused."""

    def __init__(self, stack: str, cause: SpotecsError):
        super().__init__(f"{cause}. {lock_left_note(stack)}")


class LockHeld(SpotecsError):
    """Another run holds the stack's lock (lock.py)."""

    def __init__(self, stack: str, holder: str):
        self.stack = stack
        self.holder = holder
        super().__init__(
            f"stack {stack} is locked by another run: {holder}. Wait for it to finish; if that run is "
            "gone (killed, crashed), break the lock with: spotecs force-unlock"
        )
