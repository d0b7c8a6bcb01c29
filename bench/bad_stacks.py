"""Time `spotecs up --dry-run` on every file of the bad-input corpus (tests/data/bad_stacks)
plus a generated 5 MB file, with AWS calls refused: each must exit 2 quickly.

    python bench/bad_stacks.py [--repeat N]

Prints the slowest files and the total; exits 1 if any file does not exit 2 or takes 2 s or more.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spotecs.aws import Aws  # noqa: E402
from spotecs.cli import cli  # noqa: E402
from spotecs.render import Env  # noqa: E402

LIMIT_S = 2.0


def refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("bad input reached AWS")


def run(path: Path) -> tuple[int, float]:
    env = Env(
        console=Console(file=io.StringIO()),
        err=Console(file=io.StringIO()),
        stdin_isatty=False,
        confirm=lambda q: False,
    )
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["up", "--dry-run", "-f", str(path)], obj=env)
    return result.exit_code, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    Aws.client = refuse  # type: ignore[method-assign,assignment]
    files = sorted((ROOT / "tests" / "data" / "bad_stacks").glob("*.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "generated-5mb.yaml"
        big.write_text("stack: demo\nservices: {api: {image: x}}\n" + "# padding\n" * 500_000)
        times: dict[str, float] = {}
        failed = []
        for path in [*files, big]:
            for _ in range(args.repeat):
                code, seconds = run(path)
                times[path.name] = max(times.get(path.name, 0.0), seconds)
                if code != 2 or seconds >= LIMIT_S:
                    failed.append(f"{path.name}: exit {code} in {seconds:.3f}s")
    for name, seconds in sorted(times.items(), key=lambda t: -t[1])[:5]:
        print(f"{seconds * 1000:8.1f} ms  {name}")
    print(f"{len(times)} files, slowest {max(times.values()) * 1000:.1f} ms, total {sum(times.values()):.2f} s")
    for line in failed:
        print(f"FAILED {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
