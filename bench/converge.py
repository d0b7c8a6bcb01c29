"""The convergence walk (tests/walk.py) over a range of seeds, on one sandbox: prints one line per
seed and, at the end, the seeds that failed (with the first failure of each).

    python bench/converge.py 0 20 [--edits 25]

With as many edits as the catalogue has kinds (the default), each seed tries every kind of edit
(drawn without replacement) unless a round ran out of kinds that apply; each line says how many
kinds the seed tried. CI (tests/test_converge.py) walks a fixed seed that tries every kind.

Needs the sandbox extra (moto). Exit 1 when any seed fails."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spotecs.sandbox import Sandbox
from tests.walk import CATALOGUE, walk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=int, help="first seed")
    parser.add_argument("last", type=int, help="last seed (inclusive)")
    parser.add_argument("--edits", type=int, default=len(CATALOGUE), help=f"edits per seed (default {len(CATALOGUE)})")
    args = parser.parse_args()
    failed: dict[int, str] = {}
    # AWS's delays (deregistration, health checks) 20 times faster, as in CI.
    with Sandbox(agent_interval=0.2, clock_factor=20) as sandbox, tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first, args.last + 1):
            started = time.monotonic()
            result = walk(sandbox, Path(tmp), seed, args.edits)
            status = "ok" if not result.failure else "FAIL"
            kinds = f"{len(set(result.kinds))}/{len(CATALOGUE)} kinds"
            took = time.monotonic() - started
            print(f"seed {seed}: {status} ({len(result.steps)} edits, {kinds}, {took:.0f}s)", flush=True)
            if result.failure:
                failed[seed] = result.failure
    for seed, why in failed.items():
        print(f"\n--- seed {seed}\n{why}")
    print(f"\nfailing seeds: {' '.join(map(str, failed)) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
