"""Hostile and bad input never reaches AWS: every stack file of the corpus (tests/data/bad_stacks,
each headed by `# expect: <message fragment>`) makes `up --dry-run` and `validate`, and every bad
AWS option makes each command that calls AWS, exit 2 with its message, one error report and no
traceback, before any AWS call."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from click.testing import CliRunner
from rich.console import Console

from spotecs.aws import Aws
from spotecs.cli import cli
from spotecs.config import Stack, loader
from spotecs.render import Env

CORPUS = Path(__file__).parent / "data" / "bad_stacks"
FILES = sorted(CORPUS.glob("*.yaml"))
VALID = """stack: demo
region: us-east-1
services:
  api:
    image: bitnami/node-example:0.0.1
    container_port: 3000
"""


def expected(path: Path) -> str:
    header = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    assert header.startswith("# expect: "), f"{path.name} has no '# expect: ' header"
    return header.removeprefix("# expect: ")


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every AWS call attempted (each also fails the run): there must be none."""
    calls: list[str] = []

    def refuse(self: Any, operation: str, params: Any) -> None:
        calls.append(operation)
        raise AssertionError(f"bad input reached AWS: {operation}")

    def no_client(self: Aws, service: str) -> None:
        calls.append(f"client:{service}")
        raise AssertionError(f"bad input created a {service} client")

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse)
    monkeypatch.setattr(Aws, "client", no_client)
    yield calls


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the models were asked to validate a document."""
    count: list[int] = []
    real = Stack.model_validate

    def counted(data: Any, **kwargs: Any) -> Stack:
        count.append(1)
        return real(data, **kwargs)

    monkeypatch.setattr(loader.Stack, "model_validate", counted)
    return count


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Env(
        console=Console(file=out, width=200, no_color=True),
        err=Console(file=err, width=200, no_color=True),
        stdin_isatty=False,
        confirm=lambda q: False,
    )
    result = CliRunner().invoke(cli, list(args), obj=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, out.getvalue(), err.getvalue()


def test_the_corpus_covers_what_the_issue_lists() -> None:
    kinds = {p.name.split("-", 1)[0] for p in FILES}
    assert len(FILES) >= 40
    assert {"syntax", "type", "range", "unknown", "cross", "spot", "name", "value", "hostile"} <= kinds


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
@pytest.mark.parametrize("command", [("up", "--dry-run"), ("validate",)], ids=["up", "validate"])
def test_bad_stack_file_exits_2_with_its_message_and_no_aws_call(
    path: Path, command: tuple[str, ...], aws_calls: list[str]
) -> None:
    code, out, err = run(*command, "-f", str(path))
    assert code == 2, err
    assert expected(path) in err
    assert err.startswith("Error: ")
    assert "Traceback" not in err and out == ""
    assert "\x1b" not in err and "\x07" not in err  # the file's control characters are shown, not sent
    assert aws_calls == []


@pytest.mark.parametrize("path", [p for p in FILES if p.stem.startswith("hostile-")], ids=lambda p: p.stem)
def test_hostile_files_are_refused_before_anything_is_built_from_them(
    path: Path, aws_calls: list[str], validations: list[int]
) -> None:
    code, _, _ = run("up", "--dry-run", "-f", str(path))
    assert code == 2
    if "alias" in path.stem or "deep" in path.stem or "python" in path.stem or "tag" in path.stem:
        assert validations == []


def test_an_alias_bomb_appended_to_a_valid_file_is_refused(tmp_path: Path, validations: list[int]) -> None:
    bomb = (CORPUS / "hostile-alias-bomb.yaml").read_text().split("x-bomb:\n", 1)[1]
    f = tmp_path / "s.yaml"
    f.write_text(VALID + "x-bomb:\n" + bomb)
    code, _, err = run("validate", "-f", str(f))
    assert code == 2
    assert f"YAML aliases expand to more than {loader.MAX_VALUES} values" in err
    assert validations == []


def test_a_file_of_several_megabytes_is_refused_unread(tmp_path: Path, aws_calls: list[str]) -> None:
    f = tmp_path / "big.yaml"
    f.write_text(VALID + ("# padding\n" * 500_000))
    code, _, err = run("up", "--dry-run", "-f", str(f))
    assert code == 2
    assert err.strip() == f"Error: {f}: is 5.0 MB; a stack file is at most 1 MB"
    assert aws_calls == []


def test_aliases_within_the_limit_still_share_settings() -> None:
    # Merge keys and a few aliases are the normal way to share settings between services.
    text = VALID.replace("  api:\n", "  api: &web\n") + "  admin:\n    <<: *web\n    routing: {paths: [/admin/*]}\n"
    assert loader.parse(text).services["admin"].image == "bitnami/node-example:0.0.1"


# Every command that calls AWS, as it would run: each checks the AWS options first.
COMMANDS_ON_AWS = (
    ("up", "--dry-run"),
    ("teardown", "--dry-run"),
    ("status",),
    ("refresh-ami", "--check"),
    ("logs",),
    ("logs", "--follow"),
    ("force-unlock", "--yes"),
    ("drill", "--dry-run"),
)


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        (("--region", "eu-mars-1"), "region 'eu-mars-1' (from --region, the stack file or AWS_REGION) is not a region"),
        (("--endpoint-url", "not a url"), "--endpoint-url: 'not a url' is not an http(s) URL"),
        (("--endpoint-url", "http//127.0.0.1:5000"), "--endpoint-url: 'http//127.0.0.1:5000' is not an http(s) URL"),
        (("--endpoint-url", "http://127.0.0.1:99999"), "--endpoint-url: 'http://127.0.0.1:99999' has an invalid port"),
        (("--profile", "no-such-profile"), "--profile: The config profile (no-such-profile) could not be found"),
    ],
)
def test_bad_aws_options_exit_2_in_one_line(
    tmp_path: Path, aws_calls: list[str], option: tuple[str, str], fragment: str
) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(VALID)
    for command in COMMANDS_ON_AWS:
        code, _, err = run(*command, "-f", str(f), *option)
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1
        assert fragment in err
        assert "Traceback" not in err
    assert aws_calls == []


def test_brackets_in_quotes_and_comments_are_not_nesting() -> None:
    text = VALID + "    command: ['" + "[" * 40 + "', \"" + "{" * 40 + '"]  # ' + "[" * 40 + "\n"
    assert loader.parse(text).services["api"].command == ["[" * 40, "{" * 40]
