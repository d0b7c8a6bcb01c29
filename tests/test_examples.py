"""Every file in examples/ comes up in the sandbox as it is (the sandbox holds a labelled sample
certificate for the production example's ARN), a second `up` changes nothing, and `teardown`
leaves nothing of the stack (read back with plain calls, tests/stack_inventory.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import spotecs.up
from spotecs.aws import Aws
from spotecs.cli import cli
from spotecs.render import Env
from spotecs.sandbox import Sandbox
from spotecs.steps.base import Timeouts
from tests.stack_inventory import inventory

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))
FAST = Timeouts(default=120, delay=0.1)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(agent_interval=0.2, clock_factor=20) as box:  # AWS's delays 20 times faster
        yield box


def run(sandbox: Sandbox, *args: str) -> tuple[int, str, Aws]:
    opened: list[Aws] = []

    class Recording(Aws):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            opened.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spotecs.up, "Aws", Recording)
        mp.setattr(spotecs.up, "Timeouts", lambda: FAST)
        result = CliRunner().invoke(cli, [*args, "--endpoint-url", sandbox.endpoint_url], obj=Env(stdin_isatty=False))
    assert len(opened) == 1, result.output
    return result.exit_code, result.output, opened[0]


def test_examples_are_all_tested() -> None:
    assert {p.name for p in EXAMPLES} >= {"article.yaml", "production.yaml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_up_again_and_teardown(sandbox: Sandbox, example: Path) -> None:
    doc = yaml.safe_load(example.read_text())
    stack, region = doc["stack"], doc["region"]

    code, out, _ = run(sandbox, "up", "-f", str(example), "--yes")
    assert code == 0, out
    assert "Apply complete!" in out
    live = inventory(lambda s: sandbox.client(s, region_name=region), stack)
    assert any(":listener/" in r or r.startswith("listener:") for r in live)
    assert any(r.startswith("auto-scaling-group:") for r in live)

    code, out, aws = run(sandbox, "up", "-f", str(example), "--yes")
    assert code == 0, out
    assert "No changes." in out
    assert aws.writes() == []

    code, out, _ = run(sandbox, "teardown", "-f", str(example), "--yes")
    assert code == 0, out
    assert inventory(lambda s: sandbox.client(s, region_name=region), stack) == set()
