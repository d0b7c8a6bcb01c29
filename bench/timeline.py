"""Where a no-op plan's time goes between its first AWS request and the process's end: each call
as the client made it (operation, step, depth), sent it and had its answer parsed, and the plan's
own stages, in milliseconds from the first request sent; against the sandbox (one request at a
time) and against the same answers replayed after exactly the latency (bench/replay.py), the
median run of each by wall time after start-up (bench/figures.py's no_op_plan.process and
.replayed):

    python bench/timeline.py [--stack examples/article.yaml] [--latency-ms 50] [--runs 5]

Every call takes the client a few milliseconds under one interpreter lock, to build and sign its
request and to parse its answer: the first round's requests leave one after another, and an
answer is taken up only when its thread gets the lock. The timeline shows that spread beside the
round trips. Needs the sandbox extra (moto)."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

Event = dict[str, Any]


def child(trace: str, argv: list[str]) -> None:
    """Run the CLI with every request and stage recorded; write them to `trace` on the way out."""
    import atexit

    events: list[Event] = []

    def mark(kind: str, **what: Any) -> None:
        events.append({"t": time.time(), "kind": kind, "thread": threading.current_thread().name, **what})

    put, get = http.client.HTTPConnection.putrequest, http.client.HTTPConnection.getresponse

    def putrequest(self: http.client.HTTPConnection, *a: Any, **kw: Any) -> None:
        mark("sent")
        put(self, *a, **kw)

    def getresponse(self: http.client.HTTPConnection) -> http.client.HTTPResponse:
        answer = get(self)
        mark("answered")
        return answer

    http.client.HTTPConnection.putrequest = putrequest  # type: ignore[method-assign]
    http.client.HTTPConnection.getresponse = getresponse  # type: ignore[method-assign]

    def dump() -> None:
        mark("exiting")
        Path(trace).write_text(json.dumps(events))

    atexit.register(dump)

    import spotecs.aws
    import spotecs.up

    record, finished = spotecs.aws.Aws._record, spotecs.aws.Aws._finished

    def _record(self: spotecs.aws.Aws, model: Any, params: dict[str, Any], **kw: Any) -> None:
        record(self, model, params, **kw)
        call = self.calls[-1]
        mark("call", op=f"{call.service}.{call.operation}", step=call.step, depth=call.depth)

    def _finished(self: spotecs.aws.Aws, **kw: Any) -> None:
        finished(self, **kw)
        mark("parsed")

    def staged(name: str, fn: Any) -> Any:
        def run(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            finally:
                mark(name)

        return run

    spotecs.aws.Aws._record = _record  # type: ignore[method-assign]
    spotecs.aws.Aws._finished = _finished  # type: ignore[method-assign]
    spotecs.up.read_all = staged("reads done", spotecs.up.read_all)
    spotecs.up.plan = staged("plan done", spotecs.up.plan)
    spotecs.up.plan_text = staged("text printed", spotecs.up.plan_text)
    from spotecs.cli import main

    sys.argv = ["spotecs", *argv]
    main()


def run_once(endpoint: str, path: Path, trace: Path) -> tuple[float, float, list[Event]]:
    begun = time.time()
    argv = ["up", "--dry-run", "-f", str(path), "--endpoint-url", endpoint]
    subprocess.run([sys.executable, __file__, "--child", str(trace), *argv], stdout=subprocess.DEVNULL, check=True)
    ended = time.time()
    return begun, ended, json.loads(trace.read_text())


def show(label: str, begun: float, ended: float, events: list[Event]) -> None:
    first = min(e["t"] for e in events if e["kind"] == "sent")
    print(f"--- {label}: start_up {first - begun:.3f} s, wall_minus_start_up {ended - first:.3f} s")
    print("      ms  what            thread       call")
    for e in events:
        what = f"{e.get('op', '')} {e.get('step', '')} depth {e['depth']}" if e["kind"] == "call" else ""
        print(f"{(e['t'] - first) * 1000:8.1f}  {e['kind']:<14}  {e['thread']:<11}  {what}")
    print(f"{(ended - first) * 1000:8.1f}  process ended")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--stack", type=Path, default=ROOT / "examples" / "article.yaml")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(var, "sandbox")

    import io

    from rich.console import Console

    from bench.figures import ServerSandbox
    from bench.replay import Replay
    from spotecs.aws import AwsOptions
    from spotecs.render import Env
    from spotecs.steps.base import Timeouts
    from spotecs.up import RunOptions, up

    with tempfile.TemporaryDirectory() as tmp, ServerSandbox(args.latency_ms) as box:
        path, trace = Path(tmp) / "spotecs.yaml", Path(tmp) / "trace.json"
        path.write_text(args.stack.read_text())
        opts = RunOptions(file=path, aws=AwsOptions(endpoint_url=box.endpoint_url), yes=True, wait=False)
        up(Env(console=Console(file=io.StringIO()), stdin_isatty=False), opts, Timeouts(default=300, delay=0.5))
        with Replay(box.endpoint_url, args.latency_ms) as replay:
            run_once(replay.endpoint_url, path, trace)  # the replay learns the answers
            for label, endpoint in (("sandbox", box.endpoint_url), ("replayed", replay.endpoint_url)):
                runs = [run_once(endpoint, path, trace) for _ in range(args.runs)]
                walls = [ended - min(e["t"] for e in ev if e["kind"] == "sent") for _, ended, ev in runs]
                print(f"{label}: wall_minus_start_up {' '.join(f'{w:.3f}' for w in walls)} s")
                show(label, *runs[walls.index(statistics.median_low(walls))])


if __name__ == "__main__":
    main()
