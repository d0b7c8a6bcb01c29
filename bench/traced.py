"""Run the spotecs CLI, writing to a JSON file when this process sent its first HTTP request (its
first AWS call) and when it began to exit: what bench/figures.py needs to split a run's wall
time into start-up (process start to first request sent) and the rest.

    python bench/traced.py TRACE.json up --dry-run -f examples/article.yaml --endpoint-url URL

Only the standard library is imported before the CLI, so start-up is the CLI's own: the first
request is seen in http.client, under urllib3 and botocore."""

from __future__ import annotations

import atexit
import http.client
import json
import sys
import time
from pathlib import Path
from typing import Any

# The spotecs of this checkout, not an installed one.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

first: list[float] = []
real_putrequest = http.client.HTTPConnection.putrequest


def putrequest(self: http.client.HTTPConnection, *args: Any, **kwargs: Any) -> None:
    if not first:
        first.append(time.time())
    real_putrequest(self, *args, **kwargs)


def dump(path: str) -> None:
    Path(path).write_text(json.dumps({"first_request": first[0] if first else None, "exiting": time.time()}))


if __name__ == "__main__":
    http.client.HTTPConnection.putrequest = putrequest  # type: ignore[method-assign]
    atexit.register(dump, sys.argv[1])
    from spotecs.cli import main

    sys.argv = ["spotecs", *sys.argv[2:]]
    main()
