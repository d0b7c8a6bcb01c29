"""Soak the fault-injection property (tests/faults.py) over a range of seeds, on in-process moto:
for each seed, `up` with faults → `up` → the clean run's resources, one of each → `teardown` with
faults → `teardown` → nothing left.

    python bench/soak.py --seeds 0-299

Prints the schedules run, how many converged, the duplicates and leaks found, and the seeds of
any failure (replay one with --seeds N-N). Needs the dev extras (moto, pytest)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def seed_range(text: str) -> range:
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=seed_range, default=seed_range("0-299"), help="first-last, e.g. 0-299")
    ap.add_argument("-v", "--verbose", action="store_true", help="a line per schedule")
    args = ap.parse_args()
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(var, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    )
    from moto import mock_aws

    from spotecs.sandbox import fills
    from spotecs.steps.base import Timeouts
    from tests import faults

    fills.install()
    failures: list[int] = []
    converged = duplicates = leaked = unlocks = 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, mock_aws(), pytest.MonkeyPatch.context() as mp:
        path = Path(tmp) / "stack.yaml"
        path.write_text(yaml.safe_dump(faults.PROPERTY_STACK, sort_keys=False))
        mp.setattr("spotecs.up.Timeouts", lambda: Timeouts(default=5, delay=0))
        clean, calls = faults.clean_run(path, mp)
        for seed in args.seeds:
            out = faults.check_schedule(seed, path, mp, clean, calls)
            converged += out.converged
            duplicates += len(out.duplicates)
            leaked += len(out.leaked)
            unlocks += out.unlocks
            if not out.ok:
                failures.append(seed)
                print(f"FAILED {out}", flush=True)
            elif args.verbose:
                print(f"ok {out.schedule}", flush=True)
    print(f"schedules run: {len(args.seeds)}")
    print(f"converged: {converged}")
    print(f"duplicates found: {duplicates}")
    print(f"resources leaked: {leaked}")
    print(f"locks left by a crashed or failed run (broken with force-unlock): {unlocks}")
    print(f"failed seeds: {' '.join(map(str, failures)) or 'none'}")
    print(f"time: {time.monotonic() - start:.0f} s (up {calls[0]} calls, teardown {calls[1]} calls when clean)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
