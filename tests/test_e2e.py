"""End to end: the real `spotecs up` CLI against moto's HTTP server (the sandbox), with
--endpoint-url, like a user would run it. Calls are counted with the botocore `before-call`
hook every spotecs client carries (Aws.calls)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

import spotecs.up
from spotecs.aws import Aws
from spotecs.cli import cli
from spotecs.render import Env

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    from spotecs.sandbox import Sandbox

    with Sandbox() as box:
        yield box.endpoint_url


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[Aws]:
    """Every Aws session the CLI opens, to count its calls afterwards."""
    opened: list[Aws] = []

    class Recording(Aws):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            opened.append(self)

    monkeypatch.setattr(spotecs.up, "Aws", Recording)
    return opened


def up(url: str, stack_file: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["up", "-f", str(stack_file), "--endpoint-url", url, *args],
                                obj=Env(stdin_isatty=False))
    return result.exit_code, result.output


def stack_file(tmp_path: Path, name: str, source: str = "article.yaml") -> Path:
    text = (ROOT / "examples" / source).read_text()
    text = text.replace("stack: demo-api", f"stack: {name}").replace("DemoApiClusterProd", f"{name}-cluster")
    path = tmp_path / "spotecs.yaml"
    path.write_text(text)
    return path


def test_up_twice_second_run_makes_no_write(sandbox_url: str, tmp_path: Path, runs: list[Aws]) -> None:
    path = stack_file(tmp_path, "e2e-twice")
    code, out = up(sandbox_url, path, "--yes")
    assert code == 0, out
    assert "Apply complete!" in out
    assert runs[0].writes(), "the first run must create the stack"

    code, out = up(sandbox_url, path, "--yes")
    assert code == 0, out
    assert "No changes." in out
    assert runs[1].writes() == []
    assert runs[1].calls, "the second run must still read AWS"


def test_dry_run_detailed_exitcode_over_http(sandbox_url: str, tmp_path: Path, runs: list[Aws]) -> None:
    path = stack_file(tmp_path, "e2e-dry")
    code, out = up(sandbox_url, path, "--dry-run", "--detailed-exitcode")
    assert code == 2, out
    assert "Plan: " in out and " to add" in out
    assert runs[0].writes() == []
    # Nothing was created: the stack's log group does not exist.
    logs = boto3.client("logs", endpoint_url=sandbox_url, region_name="us-east-1")
    assert logs.describe_log_groups(logGroupNamePrefix="/ecs/e2e-dry/")["logGroups"] == []


def test_without_yes_and_no_tty_refuses(sandbox_url: str, tmp_path: Path, runs: list[Aws]) -> None:
    path = stack_file(tmp_path, "e2e-refuse")
    code, out = up(sandbox_url, path)
    assert code == 2
    assert "pass --yes" in out
    assert runs[0].writes() == []


