"""Benchmark `spotecs status` on a fleet of 300 instances and 1,000 tasks in the sandbox (moto's
server, sample prices): AWS calls (in all, per operation, the plan's drift reads alone, and
the budget of the status issue) and wall time, optionally with an injected per-call latency.

    python bench/bench_status.py [--latency-ms 50] [--instances 300] [--tasks 1000]

Prints one `name value unit` line per figure. Needs the sandbox extra (moto)."""

from __future__ import annotations

import argparse
import io
import math
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

import spotecs.up
from spotecs.aws import Aws, AwsOptions
from spotecs.engine.plan import plan
from spotecs.render import Env
from spotecs.sandbox import Sandbox
from spotecs.status import collect
from spotecs.steps.base import Timeouts
from spotecs.up import RunOptions, prepare, up, with_orphans

STACK: dict[str, Any] = {
    "stack": "bench",
    "region": "us-east-1",
    "instances": {"types": ["t3.small"], "on_demand_base": 1, "on_demand_percent": 20, "min": 1, "max": 400},
    "services": {
        "api": {
            "image": "bitnami/node-example:0.0.1",
            "container_port": 3000,
            "cpu": 128,
            "memory_soft": 128,
            "memory_hard": 256,
            "desired_count": 2,
            "deployment": {"min_healthy_percent": 50, "max_percent": 200},
            "scaling": {"min": 2, "max": 2000, "target_tracking": [{"metric": "cpu", "target": 70}]},
        }
    },
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--instances", type=int, default=300)
    ap.add_argument("--tasks", type=int, default=1000)
    args = ap.parse_args()
    latency = args.latency_ms / 1000
    opened: list[Aws] = []

    class SlowAws(Aws):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            opened.append(self)

        def client(self, service: str, region: str | None = None) -> Any:
            c = super().client(service, region)
            if latency and not getattr(c, "_bench_slow", False):
                c.meta.events.register("before-send", lambda **_: time.sleep(latency))
                c._bench_slow = True
            return c

    spotecs.up.Aws = SlowAws  # type: ignore[misc]
    # lag=0: the retries of a lagging account are not what this measures.
    with tempfile.TemporaryDirectory() as tmp, Sandbox(agent_interval=None, lag=0) as box:
        stack_file = Path(tmp) / "spotecs.yaml"
        stack_file.write_text(yaml.safe_dump(STACK))
        aws_opts = AwsOptions(region="us-east-1", endpoint_url=box.endpoint_url)
        opts = RunOptions(file=stack_file, aws=aws_opts, yes=True, wait=False)
        env = Env(console=Console(file=io.StringIO()), stdin_isatty=False)
        up(env, opts, Timeouts(default=120, delay=0.2))
        box.tick()
        box.client("autoscaling").set_desired_capacity(
            AutoScalingGroupName="bench-instances", DesiredCapacity=args.instances
        )
        box.tick()
        box.client("ecs").update_service(cluster="bench", service="bench-api", desiredCount=args.tasks)
        box.tick()

        drift = prepare(opts)
        with drift.aws.reading():  # as `status` plans: each read once (aws.Aws.reading)
            with_orphans(drift)
            plan(drift.steps, drift.ctx)
        floor = len(drift.aws.calls)

        run = prepare(opts)
        start = time.perf_counter()
        doc = collect(run)
        wall = time.perf_counter() - start
        calls = run.aws.calls
        budget = floor + 2 * math.ceil(args.tasks / 100) + 2 * math.ceil(args.instances / 100) + 10
        tasks = sum(sum(r["tasks"].values()) for r in doc["fleet"]["instances"])
        print(f"status.latency {args.latency_ms:g} ms")
        print(f"status.instances {len(doc['fleet']['instances'])} count")
        print(f"status.tasks {tasks} count")
        print(f"status.calls {len(calls)} calls")
        print(f"status.writes {len(run.aws.writes())} calls")
        print(f"status.drift_reads {floor} calls")
        print(f"status.own_calls {len(calls) - floor} calls")
        print(f"status.budget {budget} calls")
        print(f"status.wall {wall:.2f} s")
        for (service, op), n in sorted(Counter((c.service, c.operation) for c in calls).items()):
            print(f"status.calls.{service}.{op} {n} calls")


if __name__ == "__main__":
    main()
