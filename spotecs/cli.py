"""Click commands. Thin: parse options, call one function, exit. Exceptions become messages and
exit codes in exactly one place (`SpotecsGroup.invoke`).

Start-up cost matters (`spotecs --help`, `validate` and `schema` must feel instant): this module
imports only click and the error types at import time. boto3 and botocore are imported when a
command first needs AWS (inside the command), moto only when the sandbox is asked for.

The end costs too: `main` ends the process through `exit_now` once the command has returned
its exit code: exit handlers run and output flushed, then `os._exit`, skipping the interpreter's
tear-down of every module's objects (10 to 20 ms after the last line). It does so only when the
main thread is the last one running (else the usual exit waits for the others) and the output
could be flushed (else the usual exit reports it); `gc.freeze()` spares the last garbage
collection either way. Code that must run at exit registers with `atexit`: a `finally` or a
`__del__` that relies on the interpreter's tear-down does not run."""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from spotecs import __version__
from spotecs.errors import CheckError, ExitCode, Outcome, SpotecsError

if TYPE_CHECKING:
    from spotecs.aws import AwsOptions
    from spotecs.render import Env

DETAILED_EXITCODE = "spotecs.detailed_exitcode"  # ctx.meta key, set by the option itself

# Outcomes that are neither success nor an error have their own codes. "Changes present" is 2
# only under --detailed-exitcode (like `terraform plan -detailed-exitcode`), where every error
# becomes 1 so that a broken run never passes for drift.
OUTCOME_CODES: dict[Outcome, int] = {
    Outcome.CHANGES_PRESENT: 2,
    Outcome.FOLLOW_ENDED: ExitCode.INTERRUPTED,
    Outcome.NEWER_AMI: ExitCode.NEWER_AMI,
    Outcome.DRILL_STOPPED: ExitCode.INTERRUPTED,
}


def exit_code(result: object, *, detailed: bool = False) -> int:
    """The one mapping from what a command returned or raised to the process's exit code."""
    if isinstance(result, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(result, SpotecsError):
        if detailed and result.exit_code == ExitCode.USAGE:
            return ExitCode.FAILURE
        return result.exit_code
    if result is Outcome.CHANGES_PRESENT and not detailed:
        return ExitCode.OK
    if isinstance(result, Outcome):
        return OUTCOME_CODES.get(result, ExitCode.OK)
    return ExitCode.OK


class SpotecsGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
        except (SpotecsError, KeyboardInterrupt) as e:
            report(_env(ctx), e)
            result = e
        code = exit_code(result, detailed=bool(ctx.meta.get(DETAILED_EXITCODE)))
        if code != ExitCode.OK:
            ctx.exit(code)
        return result


def report(env: Env, e: SpotecsError | KeyboardInterrupt) -> None:
    """One line per error (a failed pre-flight check lists every problem), never hard-wrapped:
    a terminal wraps it and a CI log keeps it whole."""
    if isinstance(e, KeyboardInterrupt):
        env.err.print(
            "Interrupted: AWS may be half-changed; run the same command again to converge.",
            markup=False,
            soft_wrap=True,
        )
        _notes(env, e)
        return
    from rich.markup import escape

    prefix = f"[red]{escape(e.prefix)}[/]" if e.prefix else ""
    if isinstance(e, CheckError):
        env.err.print(f"{prefix}the stack cannot work as written ({len(e.problems)} problem(s)):", soft_wrap=True)
        for p in e.problems:
            env.err.print(f"  - {p}", markup=False, soft_wrap=True)
    else:
        env.err.print(f"{prefix}{escape(str(e))}", soft_wrap=True)
    _notes(env, e)


def _notes(env: Env, e: BaseException) -> None:
    """What happened after the error (e.g. the stack's lock left held)."""
    for note in getattr(e, "__notes__", ()):
        env.err.print(note, markup=False, soft_wrap=True)


def _detailed_exitcode(ctx: click.Context, _: click.Parameter, value: bool) -> bool:
    ctx.meta[DETAILED_EXITCODE] = value
    return value


def _env(ctx: click.Context) -> Env:
    from spotecs.render import Env

    root = ctx.find_root()
    if not isinstance(root.obj, Env):
        root.obj = Env()
    return root.obj


@click.group(cls=SpotecsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spotecs")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run a web service on ECS over EC2 spot instances, from one YAML stack file."""
    _env(ctx)


def aws_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """-f plus the AWS CLI's habits: --profile, --region, --endpoint-url; and --sandbox."""

    @click.option(
        "-f",
        "--file",
        "file",
        type=click.Path(path_type=Path),
        default=Path("spotecs.yaml"),
        show_default=True,
        help="The stack file.",
    )
    @click.option("--profile", envvar="AWS_PROFILE", help="AWS profile (default: AWS_PROFILE).")
    @click.option("--region", help="AWS region (default: the stack file's, then AWS_REGION).")
    @click.option("--endpoint-url", help="Send AWS calls to this endpoint (e.g. a sandbox).")
    @click.option("--sandbox", is_flag=True, help="Run against a local AWS started for this run only.")
    @wraps(fn)
    def wrapper(
        *args: Any, sandbox: bool, profile: str | None, region: str | None, endpoint_url: str | None, **kwargs: Any
    ) -> Any:
        from spotecs.aws import AwsOptions  # the first import of boto3

        with _maybe_sandbox(sandbox, endpoint_url) as url:
            opts = AwsOptions(profile=None if sandbox else profile, region=region, endpoint_url=url)
            return fn(*args, aws=opts, **kwargs)

    return wrapper


def output_option(
    help: str = "text, or json: one JSON document on stdout (progress and messages on stderr).",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """-o text|json, with the command's own help. With json, stdout carries exactly one JSON
    document (README, "Machine output") and everything else goes to stderr."""
    return click.option(
        "--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True, help=help
    )


@contextmanager
def _maybe_sandbox(enabled: bool, endpoint_url: str | None) -> Iterator[str | None]:
    if not enabled:
        yield endpoint_url
        return
    if endpoint_url:
        raise click.UsageError("--sandbox and --endpoint-url cannot be used together")
    from spotecs.sandbox import Sandbox  # optional extra: imported only when asked for

    # A fresh account (the service-linked roles are made as on AWS), without the lag: at the
    # CLI's real 5 s between retries it would add a minute to a one-off run (`spotecs sandbox`
    # and the end-to-end tests keep it).
    with Sandbox(lag=0) as box:
        yield box.endpoint_url


@cli.command()
@aws_options
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (needed when stdin is not a terminal).")
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    callback=_detailed_exitcode,
    help="With --dry-run: exit 0 when there are no changes, 2 when there are, 1 on error.",
)
@click.option("--no-wait", is_flag=True, help="Do not wait for services to become healthy.")
@click.option(
    "--keep-logs",
    is_flag=True,
    help="Keep the logs the plan would delete: the log groups of services the file dropped and the "
    "access-log buckets it no longer uses (the next plan without it deletes them).",
)
@output_option()
@click.pass_obj
def up(
    env: Env,
    file: Path,
    aws: AwsOptions,
    yes: bool,
    dry_run: bool,
    detailed_exitcode: bool,
    no_wait: bool,
    keep_logs: bool,
    output: str,
) -> Outcome:
    """Create or update the stack so AWS matches the stack file."""
    from spotecs.up import RunOptions
    from spotecs.up import up as run_up

    if detailed_exitcode and not dry_run:
        raise click.UsageError("--detailed-exitcode goes with --dry-run")
    if output == "json" and not (dry_run or yes):
        raise click.UsageError(
            "--output json needs --dry-run or --yes (the plan cannot be confirmed interactively in JSON)"
        )
    opts = RunOptions(file=file, aws=aws, yes=yes, dry_run=dry_run, wait=not no_wait, output=output)
    plan = run_up(env, opts, keep_logs=keep_logs)
    return Outcome.CHANGES_PRESENT if dry_run and plan.has_changes else Outcome.DONE


@cli.command()
@aws_options
@click.option("--yes", "-y", is_flag=True, help="Delete without asking (needed when stdin is not a terminal).")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.option(
    "--keep-logs",
    is_flag=True,
    help="Keep the data a stack holds: the services' log groups, the cluster's Container Insights "
    "log group and the load balancer's access-log bucket.",
)
@output_option()
@click.pass_obj
def teardown(env: Env, file: Path, aws: AwsOptions, yes: bool, dry_run: bool, keep_logs: bool, output: str) -> None:
    """Delete everything the stack created, in reverse order; touch nothing it does not own."""
    from spotecs.teardown import teardown as run_teardown
    from spotecs.up import RunOptions

    if output == "json" and not (dry_run or yes):
        raise click.UsageError("--output json needs --dry-run or --yes")
    run_teardown(env, RunOptions(file=file, aws=aws, yes=yes, dry_run=dry_run, output=output), keep_logs=keep_logs)


@cli.command("force-unlock")
@aws_options
@click.option("--yes", "-y", is_flag=True, help="Break the lock without asking (needed when stdin is not a terminal).")
@click.pass_obj
def force_unlock(env: Env, file: Path, aws: AwsOptions, yes: bool) -> None:
    """Break the stack's run lock, left by a run that was killed; shows its holder first."""
    from spotecs.force_unlock import force_unlock as run_force_unlock
    from spotecs.up import RunOptions

    run_force_unlock(env, RunOptions(file=file, aws=aws, yes=yes))


@cli.command("refresh-ami")
@aws_options
@click.option("--check", is_flag=True, help="Only report; exit 0 when up to date, 3 when a newer AMI is available.")
@click.option("--yes", "-y", is_flag=True, help="Refresh without asking (needed when stdin is not a terminal).")
@click.option("--dry-run", is_flag=True, help="Show what would be done; change nothing.")
@click.option(
    "--min-healthy",
    type=click.IntRange(0, 100),
    default=100,
    show_default=True,
    metavar="PERCENT",
    help="Share of the desired instances kept in service during the refresh.",
)
@click.option("--no-wait", is_flag=True, help="Start the refresh and return; do not follow it.")
@click.option("--cancel", is_flag=True, help="Cancel the instance refresh in progress.")
@output_option()
@click.pass_obj
def refresh_ami(
    env: Env,
    file: Path,
    aws: AwsOptions,
    check: bool,
    yes: bool,
    dry_run: bool,
    min_healthy: int,
    no_wait: bool,
    cancel: bool,
    output: str,
) -> Outcome:
    """Move the fleet to the newest ECS-optimized AMI (new template version + instance refresh)."""
    from spotecs.refresh_ami import RefreshOptions
    from spotecs.refresh_ami import refresh_ami as run_refresh

    if check and cancel:
        raise click.UsageError("--check and --cancel cannot be used together")
    if output == "json" and not (check or dry_run or yes):
        raise click.UsageError("--output json needs --check, --dry-run or --yes")
    code = run_refresh(
        env,
        RefreshOptions(
            file=file,
            aws=aws,
            check=check,
            yes=yes,
            dry_run=dry_run,
            min_healthy=min_healthy,
            wait=not no_wait,
            cancel=cancel,
            output=output,
        ),
    )
    return Outcome.NEWER_AMI if code == ExitCode.NEWER_AMI else Outcome.DONE


@cli.command()
@aws_options
@output_option()
@click.option(
    "--watch",
    "watch",
    type=click.FloatRange(min=1),
    is_flag=False,
    flag_value=5.0,
    default=None,
    metavar="[SECONDS]",
    help="Redraw in place every SECONDS (default 5) until Ctrl-C.",
)
@click.pass_obj
def status(env: Env, file: Path, aws: AwsOptions, output: str, watch: float | None) -> None:
    """Show what runs, where, how healthy, and what it saves. Changes nothing.

    Exits 0 when every service runs its desired count with healthy targets, 1 when anything is
    unhealthy, stuck or missing."""
    from spotecs.status import StatusOptions
    from spotecs.status import status as run_status

    if watch is not None and output == "json":
        raise click.UsageError("--watch redraws tables; with --output json run status once per document")
    code = run_status(env, StatusOptions(file=file, aws=aws, output=output, watch=watch))
    if code:
        raise SystemExit(code)


@cli.command()
@click.option(
    "-f",
    "--file",
    "file",
    type=click.Path(path_type=Path),
    default=Path("spotecs.yaml"),
    show_default=True,
    help="The stack file.",
)
@output_option()
@click.pass_obj
def validate(env: Env, file: Path, output: str) -> None:
    """Check the stack file without calling AWS."""
    from rich.markup import escape

    from spotecs import config
    from spotecs.render import json_document

    with json_document(env, output == "json", command="validate", file=str(file), valid=False) as doc:
        stack = config.load(file)
        warnings = stack.warnings()
        doc.update(valid=True, stack=stack.stack, services=sorted(stack.services), warnings=warnings)
        console = env.human(output)
        for w in warnings:
            console.print(f"[yellow]Warning:[/] {escape(w)}", soft_wrap=True)
        console.print(
            f"{file}: stack '{stack.stack}' is valid ({len(stack.services)} service(s)).", markup=False, soft_wrap=True
        )


@cli.command()
@click.option("--markdown", is_flag=True, help="Print the stack file reference as a Markdown table instead.")
@click.pass_obj
def schema(env: Env, markdown: bool) -> None:
    """Print the stack file's JSON Schema (for editor completion and checks)."""
    from spotecs import config

    text = config.reference_markdown() if markdown else json.dumps(config.json_schema(), indent=2)
    env.console.print(text, markup=False, highlight=False, soft_wrap=True, end="" if markdown else "\n")


@cli.command()
@click.argument("service", required=False)
@aws_options
@click.option("--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("--since", default="1h", show_default=True, help="How far back to start: 30s, 10m, 2h, 1d.")
@click.option("--filter", "pattern", help="A CloudWatch Logs filter pattern (e.g. ERROR, or '\"GET /\"').")
@click.option("--task", help="Only this task (its id, or the start of it).")
@output_option(help="json: one document {lines: [...]}; with --follow, one JSON object per line.")
@click.pass_obj
def logs(
    env: Env,
    service: str | None,
    file: Path,
    aws: AwsOptions,
    follow: bool,
    since: str,
    pattern: str | None,
    task: str | None,
    output: str,
) -> Outcome:
    """Print the services' log lines (all services by time, or SERVICE), with stopped tasks' reasons."""
    from spotecs.logs import LogOptions
    from spotecs.logs import logs as run_logs

    opts = LogOptions(service=service, since=since, filter=pattern, task=task, follow=follow, output=output)
    try:
        run_logs(env, opts, file, aws)
    except KeyboardInterrupt:  # the way to end --follow: not an interruption of any change
        return Outcome.FOLLOW_ENDED
    return Outcome.DONE


@cli.command()
@aws_options
@click.option("--instances", type=int, help="Interrupt this many spot instances (default 1).")
@click.option("--percent", type=int, help="Interrupt this percent of the running spot instances instead.")
@click.option("--probe", help="GET this URL every 200 ms during the drill and count the answers.")
@click.option("--probe-lb", is_flag=True, help="Probe the stack's load balancer URL.")
@click.option("--budget", default="15m", show_default=True, help="Time allowed for full recovery: 900, 90s, 15m.")
@click.option("--yes", "-y", is_flag=True, help="Start without asking (needed when stdin is not a terminal).")
@click.option("--dry-run", is_flag=True, help="Show which instances would be interrupted; do nothing.")
@output_option(help="json: one document with the plan and the report.")
@click.pass_obj
def drill(
    env: Env,
    file: Path,
    aws: AwsOptions,
    instances: int | None,
    percent: int | None,
    probe: str | None,
    probe_lb: bool,
    budget: str,
    yes: bool,
    dry_run: bool,
    output: str,
) -> Outcome:
    """Rehearse a spot interruption (AWS FIS) and report how the stack recovered; exit 1 if it did not."""
    from spotecs.drill import DrillOptions, parse_budget
    from spotecs.drill import drill as run_drill

    opts = DrillOptions(
        file=file,
        aws=aws,
        instances=instances,
        percent=percent,
        probe=probe,
        probe_lb=probe_lb,
        yes=yes,
        dry_run=dry_run,
        output=output,
        budget=parse_budget(budget),
    )
    return run_drill(env, opts)


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(0, 60_000),
    default=None,
    help="Add this many milliseconds to every request, as AWS's round trip would "
    "(default: SPOTECS_SANDBOX_LATENCY_MS, else 0; --sandbox reads that variable too).",
)
@click.option(
    "--lag",
    type=click.IntRange(0, 10),
    default=2,
    show_default=True,
    help="How many calls do not see a resource just created yet, as on AWS (0: at once).",
)
@click.pass_obj
def sandbox(env: Env, port: int, latency_ms: float | None, lag: int) -> None:
    """Run a local AWS endpoint (moto plus spotecs's simulations) until Ctrl-C: a fresh account,
    as strict as AWS (spotecs/sandbox/README.md)."""
    import threading

    from spotecs.sandbox import Sandbox

    with Sandbox(port=port, latency_ms=latency_ms, lag=lag) as box:
        env.console.print(
            f"Sandbox listening on {box.endpoint_url}\n"
            f"Use it with:  spotecs up --endpoint-url {box.endpoint_url} --region us-east-1\n"
            "(any credentials work). Press Ctrl-C to stop; its state is lost.\n"
            f"Publish a newer ECS-optimized AMI (for refresh-ami): curl -X POST "
            f"'{box.endpoint_url}/_spotecs/publish-ami?alias=al2023&region=us-east-1'",
            markup=False,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            env.console.print("Sandbox stopped.")


def main() -> None:
    # NO_COLOR is honoured by rich; make click's own messages agree.
    if os.environ.get("NO_COLOR"):
        os.environ.setdefault("TERM", "dumb")
    try:
        cli(prog_name="spotecs")
    except SystemExit as e:
        exit_now(e)
        raise
    finally:
        # The process ends here. Its last garbage collection would walk every object still
        # alive, botocore's API models above all: 0.1 to 0.4 s after the last line is printed.
        # Frozen, they are left to the operating system, which frees the memory anyway.
        gc.freeze()


def exit_now(e: SystemExit) -> None:
    """End the process with `e`'s code as the interpreter would, exit handlers run and output
    flushed, without the interpreter's own tear-down: freeing every module's objects one by one
    (botocore's, rich's, pydantic's) takes 10 to 20 ms after the last line, memory the operating
    system frees anyway. Returns (the usual exit follows) when another thread still runs, which
    that exit waits for, or when the output cannot be flushed, which it reports."""
    if not isinstance(e.code, int | None) or threading.active_count() > 1:
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(e.code or 0)
