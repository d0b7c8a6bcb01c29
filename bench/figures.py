"""The performance figures of issue 15, one `name value unit` line each, against the sandbox with
an injected latency per request (`Sandbox(latency_ms=...)`, as `--sandbox` does with
SPOTECS_SANDBOX_LATENCY_MS) standing in for AWS's round trip:

    python bench/figures.py [--latency-ms 0 50] [--stack examples/article.yaml ...]
                            [--no-status] [--help-runs 10]

For each stack and latency: `up` from nothing (--no-wait), the no-op plan (`up --dry-run` with
everything in place) and `teardown`: AWS calls in all and per service and operation (the lock's
own calls apart), wall time, and the critical path: the longest chain of calls that had to wait
for one another (the lock's calls, then the orphan search's, then the longest chain of one
step's reads; then, applying, the heaviest path through the step graph, each step's calls one
after another), in round trips and times the latency. Then `status` on the 300/1,000 fleet
(bench/bench_status.py) per latency, and the median of `spotecs --help` (bench/startup.py).
Needs the sandbox extra (moto)."""

from __future__ import annotations

import argparse
import io
import os
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

from rich.console import Console

import spotecs.engine.plan
import spotecs.up
from spotecs.aws import Aws, AwsOptions, Call
from spotecs.render import Env
from spotecs.sandbox import Sandbox
from spotecs.steps.base import Timeouts
from spotecs.teardown import teardown
from spotecs.up import RunOptions, up

ROOT = Path(__file__).resolve().parent.parent
STACKS = [ROOT / "examples" / "article.yaml", ROOT / "examples" / "production.yaml"]


class Recorder:
    """Every Aws a run opens, the steps it planned, and when its reads and its apply began."""

    def __init__(self) -> None:
        self.opened: list[Aws] = []
        self.steps: list[Any] = []
        self.reads_at = 0.0
        self.apply_at: tuple[float, float] | None = None

    def install(self) -> None:
        recorder = self

        class Recorded(Aws):
            def __init__(self, *a: Any, **kw: Any) -> None:
                super().__init__(*a, **kw)
                recorder.opened.append(self)

        real_read_all, real_apply = spotecs.engine.plan.read_all, spotecs.up.apply

        def read_all(steps: Sequence[Any], ctx: Any, max_workers: int = 8) -> Any:
            recorder.steps, recorder.reads_at = list(steps), time.monotonic()
            return real_read_all(steps, ctx, max_workers)

        def apply(*a: Any, **kw: Any) -> Any:
            start = time.monotonic()
            try:
                return real_apply(*a, **kw)
            finally:
                recorder.apply_at = (start, time.monotonic())

        spotecs.up.Aws = Recorded  # type: ignore[misc]
        spotecs.engine.plan.read_all = read_all  # type: ignore[assignment]
        spotecs.up.apply = apply  # type: ignore[assignment]

    def reset(self) -> None:
        self.reads_at, self.apply_at = 0.0, None


def critical_path(aws: Aws, rec: Recorder) -> int:
    """Round trips on the longest chain of calls that had to wait for one another. A call waits
    for an earlier one that had come back before it started when both were made for the same
    step, or the earlier one for the run itself (the lock, the orphan search), for an upstream
    of its step, or in an earlier phase (plan, then apply). Reads of different steps, and calls
    a step makes at once, are not chained."""
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

    def phase(c: Call) -> int:
        return 0 if c.started < rec.reads_at else 1 if c.started < apply_start else 2

    def waited(b: Call, a: Call) -> bool:
        if aws.finished.get(id(a), float("inf")) > b.started:
            return False
        if phase(a) < phase(b) or not a.step or a.step == b.step:
            return True
        # Applying, a step starts once its upstreams are done (deleting, once its dependants are).
        return phase(b) == 2 and (a.step in ups(b.step) or b.step in ups(a.step))

    depth: list[int] = []
    for i, b in enumerate(calls):
        depth.append(1 + max((depth[j] for j in range(i) if waited(b, calls[j])), default=0))
    return max(depth, default=0)


def phase(
    name: str, fn: Callable[[], Any], rec: Recorder, latency_ms: float, out: Callable[[str, float, str], None]
) -> None:
    rec.reset()
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    calls = rec.opened[-1].calls
    own = [c for c in calls if not c.is_lock]
    trips = critical_path(rec.opened[-1], rec)
    out(f"{name}.calls", len(own), "calls")
    out(f"{name}.lock_calls", len(calls) - len(own), "calls")
    out(f"{name}.wall", round(wall, 2), "s")
    out(f"{name}.critical_path", trips, "round_trips")
    out(f"{name}.critical_path_time", round(trips * latency_ms / 1000, 2), "s")
    for (service, op), n in sorted(Counter((c.service, c.operation) for c in own).items()):
        out(f"{name}.calls.{service}.{op}", n, "calls")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 50.0])
    ap.add_argument("--stack", type=Path, nargs="+", default=STACKS)
    ap.add_argument("--no-status", action="store_true", help="skip status on the 300/1,000 fleet (slow)")
    ap.add_argument("--help-runs", type=int, default=10)
    args = ap.parse_args()

    def out(name: str, value: float, unit: str) -> None:
        print(f"{name} {value:g} {unit}", flush=True)

    rec = Recorder()
    rec.install()
    env = Env(console=Console(file=io.StringIO()), stdin_isatty=False)
    timeouts = Timeouts(default=300, delay=0.5)
    for latency in args.latency_ms:
        for stack in args.stack:
            with tempfile.TemporaryDirectory() as tmp, Sandbox(latency_ms=latency) as box:
                path = Path(tmp) / "spotecs.yaml"
                path.write_text(stack.read_text())
                opts = RunOptions(file=path, aws=AwsOptions(endpoint_url=box.endpoint_url), yes=True, wait=False)
                dry = RunOptions(**{**opts.__dict__, "dry_run": True})
                prefix = f"{stack.stem}.{latency:g}ms"
                phases: list[tuple[str, Callable[[], Any]]] = [
                    ("up", lambda o=opts: up(env, o, timeouts)),
                    ("no_op_plan", lambda o=dry: up(env, o, timeouts)),
                    ("teardown", lambda o=opts: teardown(env, o, timeouts=timeouts)),
                ]
                for name, fn in phases:
                    phase(f"{prefix}.{name}", fn, rec, latency, out)
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
