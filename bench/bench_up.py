"""Benchmark `up` / re-run / teardown on the article's stack against the sandbox: AWS calls
(reads and writes) per phase, and wall time with an injected per-call latency that stands in
for AWS's round trip (the sandbox answers in about a millisecond, AWS in tens to hundreds).

    python bench/bench_up.py [--latency-ms 100] [--workers 8] [--stack examples/article.yaml]

Prints one line per phase. Needs the sandbox extra (moto)."""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

import spotecs.engine.apply
import spotecs.engine.plan
import spotecs.up
from spotecs.aws import Aws, AwsOptions
from spotecs.render import Env
from spotecs.sandbox import Sandbox
from spotecs.steps.base import Timeouts
from spotecs.teardown import teardown
from spotecs.up import RunOptions, up

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--workers", type=int, default=8, help="engine threads (1 = serial)")
    ap.add_argument("--stack", type=Path, default=ROOT / "examples" / "article.yaml")
    args = ap.parse_args()
    latency = args.latency_ms / 1000

    opened: list[Aws] = []

    class SlowAws(Aws):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            opened.append(self)

        def client(self, service: str) -> Any:
            c = super().client(service)
            if not getattr(c, "_bench_slow", False):
                c.meta.events.register("before-send", lambda **_: time.sleep(latency))
                c._bench_slow = True
            return c

    spotecs.up.Aws = SlowAws  # type: ignore[misc]
    for mod in (spotecs.engine.plan, spotecs.engine.apply):
        _limit_workers(mod, args.workers)

    text = args.stack.read_text().replace("region: eu-west-1", "region: us-east-1")
    # lag=0: the retries of a lagging account are not what this measures.
    with tempfile.TemporaryDirectory() as tmp, Sandbox(lag=0) as box:
        stack_file = Path(tmp) / "spotecs.yaml"
        stack_file.write_text(text)
        env = Env(console=Console(file=io.StringIO()), stdin_isatty=False)
        opts = RunOptions(file=stack_file, aws=AwsOptions(region="us-east-1", endpoint_url=box.endpoint_url), yes=True)
        timeouts = Timeouts(default=120, delay=0.5)
        print(f"stack {args.stack.name}, {args.latency_ms:.0f} ms injected per call, {args.workers} worker(s)")
        for phase, fn in (
            ("up (create)", lambda: up(env, opts, timeouts)),
            ("up (no change)", lambda: up(env, opts, timeouts)),
            ("up --dry-run", lambda: up(env, RunOptions(**{**opts.__dict__, "dry_run": True}), timeouts)),
            ("teardown", lambda: teardown(env, opts, timeouts=timeouts)),
        ):
            start = time.perf_counter()
            fn()
            wall = time.perf_counter() - start
            aws = opened[-1]
            writes = len(aws.writes())
            print(
                f"{phase:16} {len(aws.calls):4} calls ({len(aws.calls) - writes} reads, {writes} writes)"
                f"  {wall:6.2f} s wall  (serial calls alone: {len(aws.calls) * latency:6.2f} s)"
            )


def _limit_workers(module: Any, workers: int) -> None:
    """Cap the engine's thread pools (the default is 8) to compare serial and parallel runs."""
    original = module.ThreadPoolExecutor

    class Capped(original):  # type: ignore[misc, valid-type]
        def __init__(self, max_workers: int | None = None, **kw: Any) -> None:
            super().__init__(max_workers=min(max_workers or workers, workers), **kw)

    module.ThreadPoolExecutor = Capped


if __name__ == "__main__":
    main()
