"""The CLI through click's CliRunner, on moto in-process. `up` runs the core steps only (network,
security groups, IAM, log groups): the compute and workload layers have their own tests, and
this module is about the command: plan output, confirmation, dry runs, exit codes, JSON."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from rich.console import Console

import spotecs.up
from spotecs.aws import Aws, AwsOptions
from spotecs.cli import cli, exit_code
from spotecs.engine.apply import Event
from spotecs.engine.apply import Result as ApplyResult
from spotecs.engine.model import Action, Change, FieldDiff, Plan, Unknown
from spotecs.errors import AwsError, Cancelled, ConfigError, Outcome
from spotecs.render import Env, ProgressView, result_text
from spotecs.render_plan import plan_json, plan_text
from spotecs.steps.base import Step
from spotecs.steps.log_group import LogGroup
from tests.helpers import MINIMAL, Runs, core_only


@dataclass
class Io:
    env: Env
    out: io.StringIO
    err: io.StringIO
    questions: list[str]

    @property
    def stdout(self) -> str:
        return self.out.getvalue()

    @property
    def stderr(self) -> str:
        return self.err.getvalue()


def make_io(*, tty: bool = True, answer: bool = True) -> Io:
    out, err = io.StringIO(), io.StringIO()
    questions: list[str] = []

    def confirm(q: str) -> bool:
        questions.append(q)
        return answer

    env = Env(
        console=Console(file=out, width=200, no_color=True, highlight=False),
        err=Console(file=err, width=200, no_color=True, highlight=False),
        stdin_isatty=tty,
        confirm=confirm,
    )
    return Io(env, out, err, questions)


@pytest.fixture
def tweak(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[Step], None]]:
    """`up` builds only the core steps; tests may append functions that alter them."""
    tweaks: list[Callable[[Step], None]] = []
    core_only(monkeypatch, tweaks)
    return tweaks


def invoke(args: list[str], io_: Io | None = None) -> tuple[Result, Io]:
    io_ = io_ or make_io()
    result = CliRunner().invoke(cli, args, obj=io_.env)
    return result, io_


# ----------------------------------------------------------------------------- up


def test_up_yes_shows_plan_applies_then_second_up_has_no_changes(
    moto: None, tweak: Any, runs: Runs, stack_file: Path
) -> None:
    result, io_ = invoke(["up", "-f", str(stack_file), "--yes"])
    assert result.exit_code == 0, io_.stderr
    out = io_.stdout
    assert "spotecs will make these changes to stack demo in us-east-1:" in out
    for line in (
        "+ security group demo-lb",
        "+ security group demo-instances",
        "+ IAM role demo-us-east-1-ecs-instance",
        "+ IAM role demo-us-east-1-ecs-execution",
        "+ log group /ecs/demo/api",
    ):
        assert line in out
    assert "retention_days = 30" in out
    assert '"source_group": "(known after apply' in out
    assert "Plan: 5 to add, 0 to change, 0 to replace, 0 to destroy." in out
    assert "Apply complete! 5 added, 0 changed, 0 replaced, 0 destroyed." in out
    assert "created log group /ecs/demo/api" in out
    assert io_.questions == []  # --yes: nothing asked
    assert "CreateSecurityGroup" in runs.writes()

    result, io_ = invoke(["up", "-f", str(stack_file), "--yes"])
    assert result.exit_code == 0
    assert "No changes. Stack demo in us-east-1 matches the stack file." in io_.stdout
    assert "Plan:" not in io_.stdout
    assert runs.writes() == []


def test_up_shows_update_and_replace_symbols(
    moto: None, tweak: list[Callable[[Step], None]], stack_file: Path, tmp_path: Path
) -> None:
    invoke(["up", "-f", str(stack_file), "--yes"])
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        yaml.safe_dump({**MINIMAL, "services": {"api": {**MINIMAL["services"]["api"], "log_retention_days": 90}}})
    )

    def new_description(step: Step) -> None:
        if step.key == "security-group:instances":
            step.description = "spotecs demo: reworded"  # type: ignore[attr-defined]

    tweak.append(new_description)
    result, io_ = invoke(["up", "-f", str(changed), "--dry-run"])
    assert result.exit_code == 0, io_.stderr
    out = io_.stdout
    assert "  ~ log group /ecs/demo/api" in out
    assert "retention_days: 30 → 90" in out
    assert "-/+ security group demo-instances (replace)" in out
    assert "# forces replacement" in out
    assert "Plan: 0 to add, 1 to change, 1 to replace, 0 to destroy." in out


def test_up_asks_and_applies_on_yes(moto: None, tweak: Any, runs: Runs, stack_file: Path) -> None:
    result, io_ = invoke(["up", "-f", str(stack_file)], make_io(tty=True, answer=True))
    assert result.exit_code == 0, io_.stderr
    assert io_.questions == ["\nApply these changes?"]
    assert "Apply complete!" in io_.stdout
    assert runs.writes()


def test_up_declined_changes_nothing(moto: None, tweak: Any, runs: Runs, stack_file: Path) -> None:
    result, io_ = invoke(["up", "-f", str(stack_file)], make_io(tty=True, answer=False))
    assert result.exit_code == 1  # as Terraform: declining is not a usage error
    assert io_.stderr == "Apply cancelled.\n"
    assert "Plan: 5 to add" in io_.stdout
    assert runs.writes() == []


def test_up_refuses_without_yes_when_stdin_is_not_a_tty(moto: None, tweak: Any, runs: Runs, stack_file: Path) -> None:
    result, io_ = invoke(["up", "-f", str(stack_file)], make_io(tty=False))
    assert result.exit_code == 2
    assert (
        "Error: refusing to change AWS without confirmation: stdin is not a terminal; pass --yes to apply" in io_.stderr
    )
    assert io_.questions == []
    assert runs.writes() == []


def test_up_dry_run_changes_nothing(moto: None, tweak: Any, runs: Runs, stack_file: Path) -> None:
    result, io_ = invoke(["up", "-f", str(stack_file), "--dry-run"], make_io(tty=False))
    assert result.exit_code == 0
    assert "Plan: 5 to add, 0 to change, 0 to replace, 0 to destroy." in io_.stdout
    assert io_.questions == []
    assert runs.sessions[0].calls, "a dry run still reads AWS"
    assert runs.writes() == []


@pytest.mark.parametrize("applied_first", [False, True])
def test_up_detailed_exitcode(moto: None, tweak: Any, stack_file: Path, applied_first: bool) -> None:
    if applied_first:
        invoke(["up", "-f", str(stack_file), "--yes"])
    result, _ = invoke(["up", "-f", str(stack_file), "--dry-run", "--detailed-exitcode"])
    assert result.exit_code == (0 if applied_first else 2)


def test_up_detailed_exitcode_error_is_1(
    moto: None, tweak: Any, stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: LogGroup, ctx: Any) -> None:
        raise AwsError(f"describe log group {self.name}", "User is not authorized (AccessDenied)", "AccessDenied")

    monkeypatch.setattr(LogGroup, "read", denied)
    result, io_ = invoke(["up", "-f", str(stack_file), "--dry-run", "--detailed-exitcode"])
    assert result.exit_code == 1
    assert io_.stderr.strip() == (
        "Error: Failed to describe log group /ecs/demo/api: User is not authorized (AccessDenied)"
    )


def test_up_detailed_exitcode_config_error_is_1_not_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 means "changes present" here: a broken stack file must not pass for drift in CI.
    monkeypatch.setattr(Aws, "client", _no_aws)
    result, io_ = invoke(["up", "-f", str(tmp_path / "missing.yaml"), "--dry-run", "--detailed-exitcode"])
    assert result.exit_code == 1
    assert "no such file" in io_.stderr


def test_detailed_exitcode_needs_dry_run(stack_file: Path) -> None:
    result, _ = invoke(["up", "-f", str(stack_file), "--detailed-exitcode"])
    assert result.exit_code == 2
    assert "--detailed-exitcode goes with --dry-run" in result.output


def _no_aws(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a bad stack file must fail before any AWS call")


BAD_FILES = [
    (
        "memory",
        {**MINIMAL, "services": {"api": {**MINIMAL["services"]["api"], "memory_soft": 1024}}},
        "services.api.memory_soft: must not exceed memory_hard (512)",
    ),
    ("unknown-key", {**MINIMAL, "servics": {}}, "servics: unknown key (did you mean 'services'?)"),
]


@pytest.mark.parametrize(("data", "message"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
@pytest.mark.parametrize("command", [["up", "--yes"], ["up", "--dry-run"], ["validate"]])
def test_config_error_is_one_line_exit_2_and_no_aws_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: dict[str, Any], message: str, command: list[str]
) -> None:
    monkeypatch.setattr(Aws, "client", _no_aws)
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    result, io_ = invoke([*command, "-f", str(f)])
    assert result.exit_code == 2, result.output + io_.stderr
    lines = io_.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {f}:")
    assert lines[0].endswith(message)
    assert io_.stdout == ""


@pytest.mark.parametrize("command", [["up", "--dry-run"], ["validate"]])
def test_every_config_problem_is_listed_one_per_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setattr(Aws, "client", _no_aws)
    f = tmp_path / "bad.yaml"
    f.write_text("stack: demo\nservices:\n  api:\n    image: x\n    cpu: lots\n    desired_count: -1\n")
    result, io_ = invoke([*command, "-f", str(f)])
    assert result.exit_code == 2
    assert io_.stderr.splitlines() == [
        f"Error: 2 problems in {f}:",
        f"  {f}:5: services.api.cpu: input should be a valid integer, unable to parse string as an integer",
        f"  {f}:6: services.api.desired_count: input should be greater than or equal to 0",
    ]
    assert io_.stdout == ""


def test_missing_stack_file_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Aws, "client", _no_aws)
    result, io_ = invoke(["up", "-f", str(tmp_path / "nope.yaml"), "--yes"])
    assert result.exit_code == 2
    assert io_.stderr.strip() == f"Error: {tmp_path / 'nope.yaml'}: no such file; pass the stack file with -f FILE"


def test_yaml_syntax_error_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Aws, "client", _no_aws)
    f = tmp_path / "s.yaml"
    f.write_text("stack: demo\nservices: [a\n")
    result, io_ = invoke(["up", "-f", str(f), "--dry-run"])
    assert result.exit_code == 2
    assert io_.stderr.startswith(f"Error: {f}:3:1: YAML syntax error:")


def test_output_json_is_a_parsable_plan(moto: None, tweak: Any, runs: Runs, stack_file: Path) -> None:
    _risky_deployment(stack_file)
    result, io_ = invoke(["up", "-f", str(stack_file), "--dry-run", "--output", "json"])
    assert result.exit_code == 0, io_.stderr
    doc = json.loads(io_.stdout)
    assert (doc["command"], doc["stack"], doc["region"], doc["error"], doc["result"]) == (
        "up",
        "demo",
        "us-east-1",
        None,
        None,
    )
    assert doc["summary"] == {"add": 5, "change": 0, "replace": 0, "destroy": 0}
    by_key = {c["key"]: c for c in doc["changes"]}
    assert by_key["log-group:api"] == {
        "key": "log-group:api",
        "kind": "log group",
        "name": "/ecs/demo/api",
        "action": "create",
        "diffs": [],
    }
    assert any("spot-heavy" in w for w in doc["warnings"])
    assert runs.writes() == []


def test_output_json_after_apply_is_one_document_with_the_result(
    moto: None, tweak: Any, runs: list[Aws], stack_file: Path
) -> None:
    result, io_ = invoke(["up", "-f", str(stack_file), "--yes", "-o", "json"], make_io(tty=False))
    assert result.exit_code == 0, io_.stderr
    doc = json.loads(io_.stdout)  # exactly one document: a second one would not parse
    created = {r["key"]: r for r in doc["result"]["created"]}
    assert created["log-group:api"] == {"key": "log-group:api", "kind": "log group", "name": "/ecs/demo/api"}
    assert len(created) == doc["summary"]["add"] == 5
    assert all(doc["result"][k] == [] for k in ("changed", "replaced", "deleted", "failed", "skipped"))
    # Progress and the closing line went to stderr.
    assert "created log group /ecs/demo/api" in io_.stderr
    assert "Apply complete! 5 added" in io_.stderr


def test_output_json_on_failure_carries_the_error_and_what_failed(
    moto: None, tweak: list[Callable[[Step], None]], stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: LogGroup, ctx: Any, desired: dict[str, Any]) -> dict[str, Any]:
        raise AwsError(f"create log group {self.name}", "not authorized (AccessDenied)", "AccessDenied")

    monkeypatch.setattr(LogGroup, "create", denied)
    result, io_ = invoke(["up", "-f", str(stack_file), "--yes", "-o", "json"], make_io(tty=False))
    assert result.exit_code == 1
    doc = json.loads(io_.stdout)
    assert doc["result"]["failed"] == [
        {
            "key": "log-group:api",
            "kind": "log group",
            "name": "/ecs/demo/api",
            "error": "Failed to create log group /ecs/demo/api: not authorized (AccessDenied)",
        }
    ]
    assert len(doc["result"]["created"]) == 4
    assert doc["error"].startswith("apply did not finish")
    assert "Error: apply did not finish" in io_.stderr


def test_output_json_when_the_plan_fails_is_still_one_document(
    moto: None, tweak: Any, stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: LogGroup, ctx: Any) -> None:
        raise AwsError(f"describe log group {self.name}", "not authorized (AccessDenied)", "AccessDenied")

    monkeypatch.setattr(LogGroup, "read", denied)
    result, io_ = invoke(["up", "-f", str(stack_file), "--dry-run", "-o", "json"])
    assert result.exit_code == 1
    doc = json.loads(io_.stdout)
    assert doc["error"] == "Failed to describe log group /ecs/demo/api: not authorized (AccessDenied)"
    assert "changes" not in doc


def test_validate_output_json(stack_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Aws, "client", _no_aws)
    result, io_ = invoke(["validate", "-f", str(stack_file), "-o", "json"])
    assert result.exit_code == 0
    doc = json.loads(io_.stdout)
    assert (doc["valid"], doc["stack"], doc["services"], doc["error"]) == (True, "demo", ["api"], None)
    assert doc["warnings"] == []  # the defaults trip none of spotecs' own warnings
    assert "is valid" in io_.stderr

    warned = tmp_path / "warned.yaml"
    svc = {**MINIMAL["services"]["api"], "deployment": {"min_healthy_percent": 100}}
    warned.write_text(yaml.safe_dump({**MINIMAL, "services": {"api": svc}}))
    result, io_ = invoke(["validate", "-f", str(warned), "-o", "json"])
    assert result.exit_code == 0
    assert any("min_healthy_percent" in w for w in json.loads(io_.stdout)["warnings"])

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**MINIMAL, "servics": {}}))
    result, io_ = invoke(["validate", "-f", str(bad), "-o", "json"])
    assert result.exit_code == 2
    doc = json.loads(io_.stdout)
    assert doc["valid"] is False and "servics: unknown key" in doc["error"]
    assert "servics: unknown key" in io_.stderr


def test_output_json_needs_dry_run_or_yes(stack_file: Path) -> None:
    result, _ = invoke(["up", "-f", str(stack_file), "--output", "json"])
    assert result.exit_code == 2
    assert "--output json needs --dry-run or --yes" in result.output


def test_check_problems_exit_2_listing_every_problem(
    moto: None, tweak: Any, runs: Runs, stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LogGroup, "check", lambda self, ctx, d, c: ["first problem", "second problem"])
    result, io_ = invoke(["up", "-f", str(stack_file), "--yes"])
    assert result.exit_code == 2
    assert io_.stderr.splitlines() == [
        "Error: the stack cannot work as written (2 problem(s)):",
        "  - first problem",
        "  - second problem",
    ]
    assert runs.writes() == []


def test_check_problems_name_the_stack_files_line(
    moto: None, tweak: Any, runs: Runs, stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        LogGroup, "check", lambda self, ctx, d, c: ["services.api.image: not pullable", "no field named here"]
    )
    line = next(i for i, text in enumerate(stack_file.read_text().splitlines(), 1) if "image:" in text)
    result, io_ = invoke(["up", "-f", str(stack_file), "--dry-run"])
    assert result.exit_code == 2
    assert io_.stderr.splitlines()[1:] == [
        f"  - {stack_file}:{line}: services.api.image: not pullable",
        "  - no field named here",
    ]
    assert runs.writes() == []


def test_apply_failure_exit_1_reports_failed_and_skipped(
    moto: None, tweak: Any, stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: Any, ctx: Any, desired: Any) -> None:
        raise AwsError(f"create security group {self.name}", "limit exceeded (RulesPerSecurityGroupLimitExceeded)")

    def fail_lb_only(step: Step) -> None:
        if step.key == "security-group:lb":
            step.create = fail.__get__(step)  # type: ignore[method-assign]

    tweak.append(fail_lb_only)
    result, io_ = invoke(["up", "-f", str(stack_file), "--yes"])
    assert result.exit_code == 1
    out = io_.stdout
    assert "Apply failed. 3 step(s) applied, 1 failed, 1 skipped." in out
    assert "failed  security group demo-lb: Failed to create security group demo-lb: limit exceeded" in out
    assert "skipped security group demo-instances" in out
    assert "Error: apply did not finish: run the same command again" in io_.stderr
    # Run again without the fault: it converges from where it stopped.
    tweak.clear()
    result, io_ = invoke(["up", "-f", str(stack_file), "--yes"])
    assert result.exit_code == 0
    assert "Plan: 2 to add, 0 to change, 0 to replace, 0 to destroy." in io_.stdout


def test_stack_region_used_and_region_and_endpoint_flags_win(
    tmp_path: Path, stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[AwsOptions] = []
    real_prepare = spotecs.up.prepare

    def spy(opts: spotecs.up.RunOptions, timeouts: Any = None, services: Any = ()) -> Any:
        run = real_prepare(opts, timeouts, services)
        seen.append(run.aws.options)
        raise AwsError("stop here", "test")

    monkeypatch.setattr(spotecs.up, "prepare", spy)
    invoke(["up", "-f", str(stack_file), "--dry-run"])
    invoke(
        ["up", "-f", str(stack_file), "--dry-run", "--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:5999"]
    )
    assert [(o.region, o.endpoint_url) for o in seen] == [("us-east-1", None), ("eu-west-1", "http://127.0.0.1:5999")]


# ----------------------------------------------------------------------------- other commands


def test_schema_prints_json_schema() -> None:
    result, io_ = invoke(["schema"], make_io())
    assert result.exit_code == 0
    schema = json.loads(io_.stdout)
    assert "services" in schema["properties"]
    assert schema["$schema"].startswith("https://json-schema.org/")


def _risky_deployment(stack_file: Path) -> None:
    """The stack file with a setting that draws a warning (min_healthy_percent 100 on spot)."""
    data = yaml.safe_load(stack_file.read_text())
    data["services"]["api"]["deployment"] = {"min_healthy_percent": 100}
    stack_file.write_text(yaml.safe_dump(data, sort_keys=False))


def test_validate_valid_file_with_warning(stack_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Aws, "client", _no_aws)
    _risky_deployment(stack_file)
    result, io_ = invoke(["validate", "-f", str(stack_file)])
    assert result.exit_code == 0
    assert f"{stack_file}: stack 'demo' is valid (1 service(s))." in io_.stdout
    assert "Warning: services.api.deployment.min_healthy_percent" in io_.stdout


def test_validate_refuses_what_up_would_refuse_at_plan_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check that needs no AWS runs in validate too (here: shared rule priorities)."""
    monkeypatch.setattr(Aws, "client", _no_aws)
    data = {
        **MINIMAL,
        "services": {
            "api": {"image": "a", "container_port": 80, "routing": {"paths": ["/a/*"], "priority": 3}},
            "web": {"image": "b", "container_port": 80, "routing": {"paths": ["/b/*"], "priority": 3}},
        },
    }
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    for command in (["validate"], ["up", "--dry-run"]):
        result, io_ = invoke([*command, "-f", str(f)])
        assert result.exit_code == 2
        assert "services.web.routing.priority: api, web share listener rule priority 3" in io_.stderr


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("spotecs, version ")


# ----------------------------------------------------------------------------- rendering


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200, no_color=True, highlight=False), buf


def test_plan_text_symbols_for_every_action() -> None:
    plan = Plan(
        [
            Change(
                "a",
                "security group",
                "demo-lb",
                Action.CREATE,
                desired={"vpc_id": Unknown("network.vpc_id"), "_owned": True},
            ),
            Change("b", "log group", "/ecs/demo/api", Action.UPDATE, [FieldDiff("retention_days", 30, 90)]),
            Change("c", "launch template", "demo", Action.NEW_VERSION, [FieldDiff("image_id", "ami-1", "ami-2")]),
            Change(
                "d",
                "security group",
                "demo-instances",
                Action.REPLACE,
                [FieldDiff("description", "old", "new", forces_replace=True)],
            ),
            Change("e", "IAM role", "demo-old", Action.DELETE),
            Change("f", "IAM role", "theirs", Action.NOOP, note="exists without this stack's spotecs tags"),
            Change("g", "log group", "/ecs/demo/quiet", Action.NOOP),
        ],
        warnings=["careful"],
    )
    console, buf = _console()
    plan_text(console, plan, "demo", "us-east-1")
    lines = buf.getvalue().splitlines()
    assert lines[0] == "Warning: careful"
    assert "    + security group demo-lb" in lines
    assert "        vpc_id = (known after apply)" in lines
    assert not any("_owned" in line for line in lines)
    assert "    ~ log group /ecs/demo/api" in lines
    assert "        retention_days: 30 → 90" in lines
    assert "    ~ launch template demo (new version)" in lines
    assert "  -/+ security group demo-instances (replace)" in lines
    assert '        description: "old" → "new"  # forces replacement' in lines
    assert "    - IAM role demo-old" in lines
    assert any("theirs: exists without this stack's spotecs tags" in line for line in lines)
    assert not any("quiet" in line for line in lines)
    assert lines[-1] == "Plan: 1 to add, 2 to change, 1 to replace, 1 to destroy."


def test_plan_json_hides_metadata_and_unknowns() -> None:
    plan = Plan(
        [
            Change(
                "a",
                "thing",
                "n",
                Action.UPDATE,
                [FieldDiff("x", {"k": 1, "_owned": True}, Unknown("u"), True)],
                note="why",
            )
        ]
    )
    doc = json.loads(plan_json(plan))
    assert doc["changes"] == [
        {
            "key": "a",
            "kind": "thing",
            "name": "n",
            "action": "update",
            "note": "why",
            "diffs": [{"path": "x", "old": {"k": 1}, "new": "(known after apply)", "forces_replacement": True}],
        }
    ]


def test_result_text_lists_failed_and_skipped() -> None:
    plan = Plan(
        [
            Change("service:api", "ECS service", "demo-api", Action.CREATE),
            Change("scaling:api", "service auto scaling", "service/demo/demo-api", Action.CREATE),
            Change("orphan:log-group:old", "log group", "/ecs/demo/old", Action.DELETE),
        ]
    )
    console, buf = _console()
    failed = {"service:api": RuntimeError("boom")}
    result_text(console, plan, ApplyResult(applied=["orphan:log-group:old"], failed=failed, skipped=["scaling:api"]))
    # The user's names, never the steps' internal keys.
    assert buf.getvalue().splitlines()[1:] == [
        "Apply failed. 1 step(s) applied, 1 failed, 1 skipped.",
        "  applied deleted log group /ecs/demo/old",
        "  failed  ECS service demo-api: boom",
        "  skipped service auto scaling service/demo/demo-api",
    ]


def test_result_text_after_an_interruption_says_what_was_applied_and_what_was_not() -> None:
    plan = Plan([Change(f"thing:{k}", "thing", k, Action.CREATE) for k in "abc"])
    console, buf = _console()
    result = ApplyResult(applied=["thing:a"], stopped=["thing:b"], skipped=["thing:c"], interrupted=True)
    result_text(console, plan, result)
    assert buf.getvalue().splitlines()[1:] == [
        "Apply interrupted. 1 step(s) applied, 1 stopped part-way, 1 not started.",
        "  applied created thing a",
        "  stopped thing b (AWS may show it part-way; the next run finishes it)",
        "  not started thing c",
    ]


# ----------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("result", "detailed", "code"),
    [
        (Outcome.DONE, False, 0),
        (Outcome.CHANGES_PRESENT, False, 0),  # changes are success unless asked to tell
        (Outcome.CHANGES_PRESENT, True, 2),
        (ConfigError("bad"), False, 2),
        (ConfigError("bad"), True, 1),  # 2 means "changes present" there: a bad file is no drift
        (AwsError("describe x", "denied"), True, 1),
        (Cancelled("Apply cancelled."), False, 1),
        (KeyboardInterrupt(), True, 130),
        (Outcome.FOLLOW_ENDED, False, 130),  # logs --follow ends with Ctrl-C: no message
    ],
)
def test_exit_code_mapping(result: object, detailed: bool, code: int) -> None:
    assert exit_code(result, detailed=detailed) == code


def test_ctrl_c_exits_130_with_one_line(stack_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(spotecs.up, "up", interrupted)
    result, io_ = invoke(["up", "-f", str(stack_file), "--yes"])
    assert result.exit_code == 130
    assert io_.stderr.count("\n") == 1 and io_.stderr.startswith("Interrupted:")


def test_sandbox_without_moto_is_one_line_exit_2(stack_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)
    monkeypatch.setitem(sys.modules, "moto.server", None)
    result, io_ = invoke(["up", "--sandbox", "-f", str(stack_file), "--yes"])
    assert result.exit_code == 2
    assert io_.stderr == "Error: the sandbox needs moto: pip install 'spotecs[sandbox]'\n"
    assert not isinstance(result.exception, RuntimeError | ImportError)


def test_sandbox_on_a_busy_port_is_one_line_exit_1() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result, io_ = invoke(["sandbox", "--port", str(port)])
    assert result.exit_code == 1
    assert io_.stderr.startswith(f"Error: --port {port}: 127.0.0.1:{port} is already in use")
    assert io_.stderr.count("\n") == 1
    assert "Sandbox listening" not in io_.stdout


def test_long_error_is_not_wrapped_at_80_columns(
    moto: None, tweak: Any, stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    detail = "User arn:aws:iam::123456789012:user/ci is not authorized to perform: logs:DescribeLogGroups " * 2

    def denied(self: LogGroup, ctx: Any) -> None:
        raise AwsError(f"describe log group {self.name}", detail.strip(), "AccessDenied")

    monkeypatch.setattr(LogGroup, "read", denied)
    io_ = make_io()
    io_.env.err = Console(file=io_.err, width=80, no_color=True, highlight=False)
    result, _ = invoke(["up", "-f", str(stack_file), "--dry-run"], io_)
    assert result.exit_code == 1
    assert io_.stderr.count("\n") == 1 and len(io_.stderr) > 160


# ----------------------------------------------------------------------------- start-up

HEAVY = ("boto3", "botocore", "moto")


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["validate", "-f", "examples/article.yaml"], ["schema"], ["schema", "--markdown"]],
    ids=["help", "validate", "schema", "schema-markdown"],
)
def test_commands_without_aws_do_not_import_boto3_or_moto(argv: list[str]) -> None:
    # A fresh interpreter: this test process has long imported them all.
    probe = (
        "import sys\n"
        "from spotecs.cli import cli\n"
        f"try:\n    cli({argv!r}, prog_name='spotecs')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('HEAVY', *heavy[:5], file=sys.stderr)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout  # the command did its job
    assert done.stderr.strip().splitlines()[-1] == "HEAVY"


def test_no_color_removes_every_style_bold_included(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    env = Env()
    # rich's no_color alone keeps bold and dim; no colour system means no escape codes at all.
    assert env.console.color_system is None and env.err.color_system is None
    monkeypatch.delenv("NO_COLOR")
    assert Env().console.no_color is False


def test_off_a_terminal_a_quiet_step_gets_a_still_line_every_10_seconds() -> None:
    console, buf = _console()
    now = [100.0]
    view = ProgressView(console, clock=lambda: now[0])
    service = Event("service:api", "start", Action.CREATE, "demo-api", "ECS service")
    view.on_event(service)
    view.on_status("service:api", "running 1/2, targets healthy 0/2")
    view.heartbeat(now=105.0)  # printed 5 s ago: nothing yet
    view.heartbeat(now=140.0)
    view.heartbeat(now=145.0)
    view.heartbeat(now=150.0)
    view.on_event(replace(service, state="done", elapsed=52.0))
    view.heartbeat(now=170.0)  # done: no more lines for it
    assert buf.getvalue().splitlines() == [
        "creating ECS service demo-api…",
        "  ECS service demo-api: running 1/2, targets healthy 0/2",  # its name, not the step's key
        "still creating ECS service demo-api, running 1/2, targets healthy 0/2 (40s elapsed)",
        "still creating ECS service demo-api, running 1/2, targets healthy 0/2 (50s elapsed)",
        "✓ created ECS service demo-api (52.0s)",
    ]


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (("up", "--dry-run"), 0),
        (("teardown", "--dry-run"), 0),
        (("status",), 1),  # no such stack: the error is in the document
        (("refresh-ami", "--check"), 1),
        (("logs",), 1),
        (("drill", "--dry-run"), 1),
        (("validate",), 0),
    ],
)
def test_every_command_prints_one_json_document_with_the_common_head(
    moto: None, stack_file: Path, command: tuple[str, ...], code: int
) -> None:
    result, io_ = invoke([*command, "-f", str(stack_file), "-o", "json"], make_io(tty=False))
    assert result.exit_code == code, io_.stderr
    doc = json.loads(io_.stdout)  # the whole of stdout: a second document or a stray line would not parse
    assert (doc["command"], doc["stack"]) == (command[0], "demo")
    assert doc.get("region", "us-east-1") == "us-east-1" and ("region" in doc) == (command[0] != "validate")
    assert (doc["error"] is None) == (code == 0)
    if code:
        assert doc["error"] in io_.stderr  # the same one line, for people


def test_a_new_launch_template_version_reads_as_english_in_progress_and_results() -> None:
    console, buf = _console()
    view = ProgressView(console)
    start = Event("launch-template", "start", Action.NEW_VERSION, "demo-instances", "launch template")
    view.on_event(start)
    view.on_event(replace(start, state="done", elapsed=0.2))
    plan = Plan([Change("launch-template", "launch template", "demo-instances", Action.NEW_VERSION)])
    result_text(console, plan, ApplyResult(applied=["launch-template"], skipped=["x"]))
    lines = buf.getvalue().splitlines()
    assert "✓ new version of launch template demo-instances (0.2s)" in lines  # not "✓ new version launch template"
    assert "  applied new version of launch template demo-instances" in lines
