"""render.py: how a plan is shown (the reason of a consequential replacement, structured values
field by field, values whole, notes of values AWS owns)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from rich.console import Console

from spotecs.engine.model import Action, Change, FieldDiff, Plan, Whole
from spotecs.render import Env, fit_columns
from spotecs.render_plan import plan_json, plan_text


def test_the_reason_is_shown_in_the_plan() -> None:
    change = Change("listeners", "listeners", "demo :80", Action.REPLACE, reason="load balancer replaced")
    out = io.StringIO()
    plan_text(Console(file=out, width=200, no_color=True), Plan([change]), "demo", "us-east-1")
    assert "-/+ listeners demo :80 (replace: load balancer replaced)" in out.getvalue()
    assert '"reason": "load balancer replaced"' in plan_json(Plan([change]))


def _plan_out(*changes: Change) -> str:
    out = io.StringIO()
    plan_text(Console(file=out, width=80, no_color=True, soft_wrap=True), Plan(list(changes)), "demo", "us-east-1")
    return out.getvalue()


def test_plan_shows_structured_values_field_by_field_and_long_values_whole() -> None:
    old_td = "arn:aws:ecs:us-east-1:123456789012:task-definition/demo-a-very-long-family-name-api:41"
    new_td = old_td.removesuffix("41") + "42"
    statement = {"Effect": "Allow", "Action": ["ssm:GetParameters"], "Resource": ["arn:aws:ssm:::parameter/a"]}
    containers_old = [{"image": "web:1", "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]
    containers_new = [{"image": "web:2", "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]}]
    change = Change(
        "service:api",
        "ECS service",
        "demo-api",
        Action.UPDATE,
        diffs=[
            FieldDiff("task_definition", old_td, new_td),
            FieldDiff("containers", containers_old, containers_new),
            FieldDiff(
                "policy",
                {"Statement": [statement]},
                {"Statement": [{**statement, "Resource": ["arn:aws:ssm:::parameter/a", "arn:aws:ssm:::parameter/b"]}]},
            ),
        ],
    )
    out = _plan_out(change)
    assert f'task_definition: "{old_td}" → "{new_td}"' in out  # the revision is there, nothing cut
    assert 'containers[0].image: "web:1" → "web:2"' in out
    assert 'containers[0].environment[1].value: "2" → "3"' in out
    assert "environment[0]" not in out  # what did not change is not shown
    assert 'policy.Statement[0].Resource: ["arn:aws:ssm:::parameter/a"] → ["arn:aws:ssm:::parameter/a", ' in out
    assert "…" not in out


def test_plan_shows_notes_of_values_aws_owns_with_or_without_changes() -> None:
    note = "desired_count: 4 in the file, 3 on the service: service auto scaling (min 3, max 30) sets it"
    quiet = Change("service:api", "ECS service", "demo-api", Action.NOOP, notes=[note])
    assert f"ECS service demo-api: note: {note}" in _plan_out(quiet)
    busy = Change("service:api", "ECS service", "demo-api", Action.UPDATE, [FieldDiff("x", 1, 2)], notes=[note])
    assert f"# note: {note}" in _plan_out(busy)


def test_a_created_resource_shows_the_users_tags_and_no_field_of_spotecs_own() -> None:
    own = {"spotecs:stack": "demo", "spotecs:managed": "true"}
    desired = {
        "retention_days": 90,
        "tags": Whole({**own, "team": "payments", "cost-center": "cc-17"}),
        "volume_tags": Whole({**own, "Name": "demo-instances"}),
        "step_scaling": [
            {"name": "demo-api-step-pushes", "alarm": {"threshold": 5.0, "tags": Whole(own), "_arn": "arn:..."}}
        ],
        "_owned": True,
    }
    out = _plan_out(Change("log:api", "log group", "/ecs/demo/api", Action.CREATE, desired=desired))
    assert 'tags = {"cost-center": "cc-17", "team": "payments"}' in out
    assert 'volume_tags = {"Name": "demo-instances"}' in out
    assert 'step_scaling = [{"alarm": {"threshold": 5.0}, "name": "demo-api-step-pushes"}]' in out
    assert "spotecs:" not in out and "_owned" not in out and "_arn" not in out
    # With no `tags:` in the file, a resource shows no tags line at all.
    bare = {"retention_days": 90, "tags": Whole(own)}
    out = _plan_out(Change("log:api", "log group", "/ecs/demo/api", Action.CREATE, desired=bare))
    assert "retention_days = 90" in out and "tags" not in out


def test_the_commands_consoles_print_a_secret_arn_as_written_not_as_an_emoji(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # rich turns ":secret:" (every Secrets Manager ARN has it) into an emoji unless told not to;
    # escape() does not protect from that, only the console's emoji=False does.
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/db-AbCdEf"
    change = Change("iam:execution-role", "IAM role", "demo-exec", Action.CREATE, desired={"resource": arn})
    env = Env()
    plan_text(env.console, Plan([change]), "demo", "us-east-1")
    env.err.print(f"Error: cannot read {arn} :thumbs_up:")
    out, err = capsys.readouterr()
    assert f'resource = "{arn}"' in out
    assert f"{arn} :thumbs_up:" in err


WARMED = """
import sys
from rich.style import Style
from spotecs import render_plan
render_plan.warm_up()
warmed = Style.parse.cache_info().currsize
styles = set(render_plan.COLORS.values()) | {"bold"}
before = Style.parse.cache_info().misses
for style in styles:
    Style.parse(style)
print("rich._emoji_codes" in sys.modules, Style.parse.cache_info().misses - before, warmed >= len(styles))
"""


def test_warm_up_warms_the_plans_styles_and_never_the_emoji_table() -> None:
    """The commands' consoles print no emoji codes: warming rich's emoji table (~3 ms of a
    worker's time under the GIL) would pay for nothing; the plan's styles are what the first
    print parses. A fresh interpreter: this one's caches are warm already."""
    got = subprocess.run([sys.executable, "-c", WARMED], capture_output=True, text=True, check=True).stdout.split()
    assert got == ["False", "0", "True"]


def test_on_a_terminal_a_long_plan_line_wraps_under_its_own_indent_not_at_the_margin() -> None:
    ingress = [{"cidr": "0.0.0.0/0", "from": p, "protocol": "tcp", "to": p} for p in (80, 443)]
    arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-api/40e16ea6df25ef48"
    created = Change("sg:lb", "security group", "demo-lb", Action.CREATE, desired={"ingress": ingress})
    owned = "desired_count: 4 in the file, 6 on the service: service auto scaling (min 3, max 30) sets it"
    quiet = Change("service:api", "ECS service", "demo-api", Action.NOOP, notes=[owned])
    changed = Change(
        "listeners",
        "listeners",
        "demo :80",
        Action.UPDATE,
        [FieldDiff("http.target_group", None, arn)],
        notes=["also re-tags the 2 running instances and their volumes (AWS tags them only at launch)"],
    )
    out = io.StringIO()
    console = Console(file=out, width=60, color_system=None, highlight=False, force_terminal=True)
    plan_text(console, Plan([created, changed, quiet]), "demo", "us-east-1")
    lines = out.getvalue().splitlines()
    body = [
        line
        for line in lines
        if line and not line.lstrip().startswith(("+", "~", "Plan:", "spotecs will", "ECS service"))
    ]
    assert len(body) > 3 and all(len(line) <= 60 for line in lines)
    # Each value starts at 8 columns; its continuation lines at 12: none back at the margin.
    assert all(line.startswith(" " * 8) for line in body), body
    assert [line for line in body if line.startswith(" " * 12)]
    # Folded only where a word must be: the whole value is there once the lines are joined.
    assert arn in "".join(line.strip() for line in body)
    # A note of a resource that does not change wraps under its own indent too.
    start = next(i for i, line in enumerate(lines) if line.startswith("    ECS service demo-api: note:"))
    rest = lines[start + 1 : lines.index("", start)]
    assert rest and all(line.startswith(" " * 8) for line in rest), lines
    # Off a terminal (soft wrap) each line stays whole, for logs and grep.
    piped = io.StringIO()
    plan_text(Console(file=piped, width=60, no_color=True, soft_wrap=True), Plan([changed]), "demo", "us-east-1")
    assert f'        http.target_group: null → "{arn}"' in piped.getvalue().splitlines()


@pytest.mark.parametrize(
    ("room", "widths"),
    [
        (63, [None, None, None, None]),  # all fits as it is: rich's own widths
        (55, [19, 18, 7, 5]),  # the health is 9 short, the tasks 9: the first one whole, the rest after
        (50, [19, 12, 8, 5]),  # no column can be completed: round the columns still short
        (45, [19, 9, 6, 5]),  # every column at its longest word ("protected", "worker"), the id whole
        (44, [None, None, None, None]),  # less than that: nothing can save a fold
    ],
)
def test_fit_columns_keeps_words_whole_and_completes_the_shortest_needs_first(
    room: int, widths: list[int | None]
) -> None:
    cells = [
        ["instance", "health", "tasks", "free"],
        ["i-0123456789abcdef0", "Healthy, protected", "3 api, 2 worker", "0/512"],
    ]
    assert fit_columns(cells, {0}, room) == widths


def test_on_a_terminal_a_plan_warning_wraps_under_its_text() -> None:
    warning = (
        "service-linked role AWSServiceRoleForAutoScaling does not exist in this account: up creates it before "
        "its first change (needed for the auto scaling group); it is shared by the account and never deleted"
    )
    plan = Plan([Change("log-group:api", "log group", "/ecs/demo/api", Action.CREATE, desired={"retention": 30})])
    plan.warnings.append(warning)
    out = io.StringIO()
    plan_text(Console(file=out, width=80, color_system=None, force_terminal=True), plan, "demo", "us-east-1")
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Warning: service-linked role"))
    rest = lines[start + 1 : next(i for i, line in enumerate(lines) if line.startswith("spotecs will"))]
    assert rest and all(line.startswith(" " * 9) and line[9] != " " for line in rest), lines
    assert len(lines[start]) > 80 - len(" account:")  # the first line takes the whole width
    assert " ".join(line.strip() for line in lines[start : start + 1 + len(rest)]) == f"Warning: {warning}"
