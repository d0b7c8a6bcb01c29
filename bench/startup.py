"""Start-up time of the commands that must feel instant: `spotecs --help`, `validate` and
`schema`, each run N times in a fresh interpreter (as hyperfine does), one line per figure:

    python bench/startup.py [--runs 20]

    startup_help_median 0.21 s
    ...

Also prints the modules each command imported that it should not (boto3, botocore, moto)."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("boto3", "botocore", "moto")
COMMANDS = {
    "help": ["--help"],
    "validate": ["validate", "-f", str(ROOT / "examples" / "article.yaml")],
    "schema": ["schema"],
}
# The console script's body, with a report of the heavy modules on the way out.
PROBE = (
    "import atexit, sys\n"
    f"atexit.register(lambda: print(*sorted({{m for m in sys.modules if m.split('.')[0] in {HEAVY!r}}}),"
    " file=sys.stderr))\n"
    "from spotecs.cli import main\n"
    "sys.argv[0] = 'spotecs'\n"
    "main()\n"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    floor = [_time([sys.executable, "-c", "pass"]) for _ in range(args.runs)]
    print(f"startup_python_median {statistics.median(floor):.3f} s")
    for name, argv in COMMANDS.items():
        times = [_time([sys.executable, "-c", "from spotecs.cli import main; main()", *argv]) for _ in range(args.runs)]
        print(f"startup_{name}_median {statistics.median(times):.3f} s")
        print(f"startup_{name}_min {min(times):.3f} s")
        heavy = subprocess.run(
            [sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True, check=False
        ).stderr.split()
        print(f"startup_{name}_heavy_modules {len(heavy)} modules{' ' + ' '.join(heavy[:3]) if heavy else ''}")


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
