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


def critical_path(calls: list[Call], rec: Recorder) -> int:
    """Round trips on the longest chain of calls that waited for one another (see the module's
    docstring). Calls in one step run one after another; steps wait for their upstreams."""
    apply_start, apply_end = rec.apply_at or (float("inf"), float("inf"))
    before = [c for c in calls if c.started < rec.reads_at]  # the lock, the orphan search
    reads = Counter(c.step for c in calls if rec.reads_at <= c.started < apply_start and not c.is_lock)
    applied = Counter(c.step for c in calls if apply_start <= c.started < apply_end and not c.is_lock)
    after = [c for c in calls if c.started >= apply_end]  # the lock's release
    heaviest: dict[str, int] = {}

    def longest(key: str, deps: dict[str, tuple[str, ...]]) -> int:
        if key not in heaviest:
            heaviest[key] = applied.get(key, 0) + max(
                (longest(d, deps) for d in deps.get(key, ()) if d in deps), default=0
            )
        return heaviest[key]

    deps = {s.key: tuple(s.depends_on) for s in rec.steps}
    path = max((longest(k, deps) for k in deps), default=0)
    return len(before) + max(reads.values(), default=0) + path + len(after)


def phase(
    name: str, fn: Callable[[], Any], rec: Recorder, latency_ms: float, out: Callable[[str, float, str], None]
) -> None:
    rec.reset()
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    calls = rec.opened[-1].calls
    own = [c for c in calls if not c.is_lock]
    trips = critical_path(calls, rec)
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
