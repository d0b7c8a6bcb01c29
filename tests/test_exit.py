"""How the `spotecs` process ends (cli.exit_now): with the command's exit code, every line of its
output, and the exit handlers run, but without the interpreter's tear-down (10 to 20 ms of freeing
objects after the last line). Run as the user runs it: a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# An exit handler registered before the CLI, as a wrapper (bench/traced.py) or a tool does; it
# writes after the CLI's last line, so output flushed before the handlers ran would lose it.
RUN = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('exit handler ran', file=sys.stderr))\n"
    "from spotecs.cli import main\n"
    "sys.argv = ['spotecs', *sys.argv[1:]]\n"
    "main()\n"
)


def spotecs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUN, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_command_that_succeeds_exits_0_with_all_its_output_and_the_exit_handlers_run() -> None:
    done = spotecs("schema")
    assert done.returncode == 0, done.stderr
    # Tens of kilobytes through a pipe: every byte is out before the process ends.
    assert len(done.stdout) > 16_384
    assert json.loads(done.stdout)["$schema"].startswith("https://json-schema.org/")
    assert done.stderr == "exit handler ran\n"


def test_a_refused_command_keeps_its_exit_code_and_message(tmp_path: Path) -> None:
    done = spotecs("validate", "-f", str(tmp_path / "absent.yaml"))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert "absent.yaml" in lines[0]
    assert lines[-1] == "exit handler ran"


# A thread still working when the command returns: the usual exit waits for it.
LATE_THREAD = (
    "import threading, time\n"
    "threading.Thread(target=lambda: (time.sleep(0.5), print('thread done', file=sys.stderr))).start()\n"
)


def test_the_usual_exit_when_another_thread_still_runs() -> None:
    # Ending the process at once would cut that thread's work short.
    run = RUN.replace("from spotecs", LATE_THREAD + "from spotecs")
    done = subprocess.run([sys.executable, "-c", run, "schema"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr.splitlines() == ["thread done", "exit handler ran"]
