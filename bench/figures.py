"""The performance figures of issue 15, one `name value unit` line each, against the sandbox
(`spotecs sandbox` in a process of its own) with an injected latency per request
(`--latency-ms`, as SPOTECS_SANDBOX_LATENCY_MS does for `--sandbox`) standing in for AWS's
round trip:

    python bench/figures.py [--latency-ms 0 50] [--stack examples/article.yaml ...]
                            [--no-status] [--help-runs 10] [--process-runs 5]

For each stack and latency: `up` from nothing (--no-wait), the no-op plan (`up --dry-run` with
everything in place) and `teardown`, run in this process:
- calls: AWS calls in all and per service and operation (the lock's own apart);
- wall, and wall_from_first_call (start-up apart); waits: the time the run only waited on AWS
  conditions (a step sleeping between a retry's, a poll's or a waiter's attempts while no call
  was in flight); wall_from_first_call_minus_waits;
- critical_path: the longest chain of calls that had to wait for one another, in round trips
  (planning, aws.Call.depth; applying, along the step graph), times the latency
  (critical_path_time) and as the sandbox answered those calls (critical_path_measured: the
  sandbox answers one request at a time, so calls made at once queue there), and
  wall_from_first_call_minus_waits over the latter;
- critical_path_with_waits: the chain longest in its calls' seconds plus the seconds its steps
  slept between them, critical_path_waits those waits, and
  wall_from_first_call_minus_critical_path_waits_over_its_calls: the run's wall with the waits on
  its critical path excluded, over that chain's calls (issue 15: "wall, waits on AWS conditions
  excluded, <= critical path + 20 %"). `waits` leaves out a step's sleep while another step's call
  is in flight, so with steps retrying side by side the ratio above overstates the excess.
Then the no-op plan as a user runs it, a process of its own (bench/traced.py), the median of
--process-runs runs: start_up (process start to first AWS request sent), wall,
wall_minus_start_up, four_round_trips (4 x the latency), interpreter_exit (the process's own
end after its last line); against the sandbox (no_op_plan.process) and against the same
answers replayed after exactly the latency, all at once (no_op_plan.replayed, bench/replay.py:
the sandbox answers one request at a time, AWS does not). Then `status` on the 300/1,000
fleet (bench/bench_status.py) per latency, and the median of `spotecs --help`
(bench/startup.py). Needs the sandbox extra (moto)."""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# The spotecs of this checkout, not an installed one.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import botocore.waiter
from rich.console import Console

import spotecs.aws
import spotecs.engine.plan
import spotecs.up
from bench.replay import Replay
from spotecs.aws import Aws, AwsOptions, Call
from spotecs.render import Env
from spotecs.steps.base import Timeouts
from spotecs.teardown import teardown
from spotecs.up import RunOptions, up

ROOT = Path(__file__).resolve().parent.parent
STACKS = [ROOT / "examples" / "article.yaml", ROOT / "examples" / "production.yaml"]


class Recorder:
    """Every Aws a run opens, the steps it planned, when its apply began, and when it slept
    waiting on an AWS condition (between a retry's or a poll's attempts, in a botocore waiter)."""

    def __init__(self) -> None:
        self.opened: list[Aws] = []
        self.steps: list[Any] = []
        self.apply_at: tuple[float, float] | None = None
        self.sleeps: list[tuple[float, float]] = []
        # The same sleeps with the step the sleeping thread worked for (aws.Call.step).
        self.slept: list[tuple[str, float, float]] = []

    def install(self) -> None:
        recorder = self

        class Recorded(Aws):
            def __init__(self, *a: Any, **kw: Any) -> None:
                super().__init__(*a, **kw)
                recorder.opened.append(self)

        real_plan, real_apply, real_pause = spotecs.engine.plan.plan, spotecs.up.apply, spotecs.aws.pause

        def plan(steps: Sequence[Any], *a: Any, **kw: Any) -> Any:
            recorder.steps = list(steps)
            return real_plan(steps, *a, **kw)

        def apply(*a: Any, **kw: Any) -> Any:
            start = time.monotonic()
            try:
                return real_apply(*a, **kw)
            finally:
                recorder.apply_at = (start, time.monotonic())

        def slept(start: float) -> None:
            end = time.monotonic()
            recorder.sleeps.append((start, end))
            acting = recorder.opened[-1]._acting if recorder.opened else None
            recorder.slept.append((str(getattr(acting, "step", "")), start, end))

        def sleep(seconds: float) -> None:
            start = time.monotonic()
            try:
                time.sleep(seconds)
            finally:
                slept(start)

        def pause(seconds: float, stop: Any = None) -> None:
            start = time.monotonic()
            try:
                real_pause(seconds, stop)
            finally:
                slept(start)

        class WaiterClock:
            """botocore.waiter's `time`, with its sleeps recorded."""

            def __getattr__(self, name: str) -> Any:
                return sleep if name == "sleep" else getattr(time, name)

        spotecs.up.Aws = Recorded  # type: ignore[misc]
        spotecs.up.plan = plan  # type: ignore[assignment]
        spotecs.up.apply = apply  # type: ignore[assignment]
        spotecs.aws.pause = pause
        botocore.waiter.time = WaiterClock()  # type: ignore[assignment]

    def reset(self) -> None:
        self.apply_at, self.sleeps, self.slept = None, [], []


def critical_path(aws: Aws, rec: Recorder) -> tuple[int, float, float, float]:
    """The longest chain of calls that had to wait for one another: (round trips, the seconds
    those calls took), then the chain longest in the seconds its calls took plus the seconds its
    steps slept between them (waits on AWS conditions: a retry's, a poll's, a waiter's pauses)
    as (those calls' seconds, those waits' seconds). Planning, a call's depth is what it waited for (aws.Call.depth: the
    lock's calls, then the reads, the orphan search beside them). Applying, a call waits for an
    earlier one that had come back before it started when both were made for the same step, or
    the earlier one for the run itself (the lock, the plan), for an upstream of its step, or in
    the plan. Calls a step makes at once, and steps that do not depend on each other, are not
    chained. The time is each call's own, as the sandbox answered it."""
    calls = sorted(aws.calls, key=lambda c: c.started)
    apply_start = rec.apply_at[0] if rec.apply_at else float("inf")
    deps = {s.key: tuple(s.depends_on) for s in rec.steps}
    upstream: dict[str, set[str]] = {}

    def ups(key: str) -> set[str]:
        if key not in upstream:
            upstream[key] = set()
            for d in deps.get(key, ()):
                upstream[key] |= {d, *ups(d)}
        return upstream[key]

    def took(c: Call) -> float:
        return max(0.0, aws.finished.get(id(c), c.started) - c.started)

    def waited(b: Call, a: Call) -> bool:
        if aws.finished.get(id(a), float("inf")) > b.started:
            return False
        if a.started < apply_start <= b.started or not a.step or a.step == b.step:
            return True
        if b.started < apply_start:  # planning, steps read at once
            return False
        # Applying, a step starts once its upstreams are done (deleting, once its dependants are).
        return a.step in ups(b.step) or b.step in ups(a.step)

    # Planning: a call of depth d follows the calls of depth d - 1 that had come back before it
    # started (the one it waited for is among them). A spotecs that records no depth (before
    # issue 15's third part: to measure the code before a change) is timed as applying.
    planned = [c for c in calls if c.started < apply_start and hasattr(c, "depth")]
    trips: list[int] = []
    seconds: list[float] = []
    # With waits: (calls' seconds, waits' seconds) of the chain ending at each call longest in both.
    waits: list[tuple[float, float]] = []

    def slept(step: str, start: float, end: float) -> float:
        """Seconds `step` slept between two moments: what it waited for before its next call."""
        return sum(max(0.0, min(until, end) - max(since, start)) for key, since, until in rec.slept if key == step)

    for i, b in enumerate(planned):
        before = [j for j in range(i) if planned[j].depth == b.depth - 1 and waited(b, planned[j])]
        trips.append(b.depth)
        seconds.append(took(b) + max((seconds[j] for j in before), default=0.0))
        waits.append((seconds[-1], 0.0))
    for i in range(len(planned), len(calls)):
        b = calls[i]
        before = [j for j in range(i) if waited(b, calls[j])]
        trips.append(1 + max((trips[j] for j in before), default=0))
        seconds.append(took(b) + max((seconds[j] for j in before), default=0.0))
        chains = [
            (waits[j][0], waits[j][1] + slept(b.step, aws.finished.get(id(calls[j]), b.started), b.started))
            for j in before
        ]
        longest = max(chains, key=sum, default=(0.0, 0.0))
        waits.append((longest[0] + took(b), longest[1]))
    chain_calls, chain_waits = max(waits, key=sum, default=(0.0, 0.0))
    return max(trips, default=0), max(seconds, default=0.0), chain_calls, chain_waits


def waiting(aws: Aws, rec: Recorder, start: float, end: float) -> float:
    """Seconds of [start, end] in which the run only waited on AWS conditions: some step slept
    between attempts (a retry's, a poll's, a waiter's) while no call was in flight."""
    asleep = _union(rec.sleeps, start, end)
    flying = _union([(c.started, aws.finished.get(id(c), end)) for c in aws.calls], start, end)
    return _length(asleep) - _length(_intersection(asleep, flying))


def _union(spans: Sequence[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted((max(a, start), min(b, end)) for a, b in spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _intersection(xs: list[tuple[float, float]], ys: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(max(a, c), min(b, d)) for a, b in xs for c, d in ys if min(b, d) > max(a, c)]


def _length(spans: list[tuple[float, float]]) -> float:
    return sum(b - a for a, b in spans)


def phase(
    name: str, fn: Callable[[], Any], rec: Recorder, latency_ms: float, out: Callable[[str, float, str], None]
) -> None:
    rec.reset()
    start = time.monotonic()
    fn()
    end = time.monotonic()
    wall = end - start
    aws = rec.opened[-1]
    calls = aws.calls
    own = [c for c in calls if not c.is_lock]
    trips, chain, chain_calls, chain_waits = critical_path(aws, rec)
    waits = waiting(aws, rec, start, end)
    # From the first call on: what comes before it (loading the stack file, making the clients)
    # is start-up, measured on its own by process_plan.
    calling = end - min((c.started for c in calls), default=end)
    out(f"{name}.calls", len(own), "calls")
    out(f"{name}.lock_calls", len(calls) - len(own), "calls")
    out(f"{name}.wall", round(wall, 2), "s")
    out(f"{name}.wall_from_first_call", round(calling, 2), "s")
    out(f"{name}.waits", round(waits, 2), "s")
    out(f"{name}.wall_from_first_call_minus_waits", round(calling - waits, 2), "s")
    out(f"{name}.critical_path", trips, "round_trips")
    out(f"{name}.critical_path_time", round(trips * latency_ms / 1000, 2), "s")
    out(f"{name}.critical_path_measured", round(chain, 2), "s")
    if chain:
        out(f"{name}.wall_from_first_call_minus_waits_over_critical_path", round((calling - waits) / chain, 2), "ratio")
    # The waits that lengthen the run are those on its critical path: a step sleeping between
    # retries while another step's calls are in flight is not in `waits`, yet the run waited for
    # it if that step was on the longest chain.
    out(f"{name}.critical_path_with_waits", round(chain_calls + chain_waits, 2), "s")
    out(f"{name}.critical_path_waits", round(chain_waits, 2), "s")
    if chain_calls:
        ratio = (calling - chain_waits) / chain_calls
        out(f"{name}.wall_from_first_call_minus_critical_path_waits_over_its_calls", round(ratio, 2), "ratio")
    for (service, op), n in sorted(Counter((c.service, c.operation) for c in own).items()):
        out(f"{name}.calls.{service}.{op}", n, "calls")


def process_plan(
    name: str,
    path: Path,
    endpoint: str,
    latency_ms: float,
    runs: int,
    out: Callable[[str, float, str], None],
    warm: int = 0,
) -> None:
    """The no-op plan as a user runs it, a process of its own (bench/traced.py): start-up is
    process start to first AWS request sent; the medians of `runs` runs, after `warm` runs not
    counted."""
    figures: list[tuple[float, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.json"
        for i in range(warm + runs):
            begun = time.time()
            argv = ["up", "--dry-run", "-f", str(path), "--endpoint-url", endpoint]
            subprocess.run(
                [sys.executable, str(ROOT / "bench" / "traced.py"), str(trace), *argv],
                stdout=subprocess.DEVNULL,
                check=True,
            )
            ended = time.time()
            got = json.loads(trace.read_text())
            start_up = got["first_request"] - begun
            if i >= warm:
                figures.append((start_up, ended - begun, ended - begun - start_up, ended - got["exiting"]))
    median = [statistics.median(f[i] for f in figures) for i in range(4)]
    out(f"{name}.start_up", round(median[0], 3), "s")
    out(f"{name}.wall", round(median[1], 3), "s")
    out(f"{name}.wall_minus_start_up", round(median[2], 3), "s")
    out(f"{name}.four_round_trips", round(4 * latency_ms / 1000, 3), "s")
    out(f"{name}.interpreter_exit", round(median[3], 3), "s")


class ServerSandbox:
    """`spotecs sandbox` in a process of its own, as AWS is: its work does not compete with the
    run measured for this process's interpreter lock."""

    def __init__(self, latency_ms: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spotecs", "sandbox", "--port", "0", "--latency-ms", f"{latency_ms:g}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("Sandbox listening on "):
            self.process.kill()
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        self.endpoint_url = line.split()[-1]

    def __enter__(self) -> ServerSandbox:
        return self

    def __exit__(self, *_: Any) -> None:
        # Not SIGINT: a bench started in the background by a shell inherits it ignored.
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 50.0])
    ap.add_argument("--stack", type=Path, nargs="+", default=STACKS)
    ap.add_argument("--no-status", action="store_true", help="skip status on the 300/1,000 fleet (slow)")
    ap.add_argument("--help-runs", type=int, default=10)
    ap.add_argument("--process-runs", type=int, default=5, help="runs of the no-op plan as a process (median)")
    args = ap.parse_args()
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # any credentials work in the sandbox
        os.environ.setdefault(var, "sandbox")

    def out(name: str, value: float, unit: str) -> None:
        print(f"{name} {value:g} {unit}", flush=True)

    rec = Recorder()
    rec.install()
    env = Env(console=Console(file=io.StringIO()), stdin_isatty=False)
    timeouts = Timeouts(default=300, delay=0.5)
    for latency in args.latency_ms:
        for stack in args.stack:
            with tempfile.TemporaryDirectory() as tmp, ServerSandbox(latency) as box:
                path = Path(tmp) / "spotecs.yaml"
                path.write_text(stack.read_text())
                opts = RunOptions(file=path, aws=AwsOptions(endpoint_url=box.endpoint_url), yes=True, wait=False)
                dry = RunOptions(**{**opts.__dict__, "dry_run": True})
                prefix = f"{stack.stem}.{latency:g}ms"
                phase(f"{prefix}.up", lambda o=opts: up(env, o, timeouts), rec, latency, out)
                phase(f"{prefix}.no_op_plan", lambda o=dry: up(env, o, timeouts), rec, latency, out)
                process_plan(f"{prefix}.no_op_plan.process", path, box.endpoint_url, latency, args.process_runs, out)
                # The same reads from an AWS that answers each in exactly the latency, all at once
                # (bench/replay.py): the sandbox's one-request-at-a-time processing apart.
                with Replay(box.endpoint_url, latency) as aws:
                    replayed = f"{prefix}.no_op_plan.replayed"
                    process_plan(replayed, path, aws.endpoint_url, latency, args.process_runs, out, warm=1)
                phase(f"{prefix}.teardown", lambda o=opts: teardown(env, o, timeouts=timeouts), rec, latency, out)
        if not args.no_status:
            status = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "bench_status.py")],
                env={**os.environ, "SPOTECS_SANDBOX_LATENCY_MS": f"{latency:g}"},
                capture_output=True,
                text=True,
                check=True,
            )
            for line in status.stdout.splitlines():
                if line.startswith("status."):
                    print(f"{latency:g}ms.{line}", flush=True)
    startup = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "startup.py"), "--runs", str(args.help_runs)],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in startup.stdout.splitlines():
        if line.startswith(("startup_help_median", "startup_python_median")):
            print(line, flush=True)


if __name__ == "__main__":
    main()
