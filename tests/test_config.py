"""The stack file: every bad input is one line naming the file, line, field path and what is
wrong (ConfigError, exit 2, no AWS call); the article's traps are refused; warnings() flags the
legal-but-risky settings. Table-driven: (yaml, expected path, message fragment, expected line)."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import boto3
import pytest

from spotecs import config
from spotecs.config import SPOT_NOTICE_SECONDS, Stack, formats, load, parse, parse_duration
from spotecs.errors import ConfigError, ExitCode

# Line numbers in the table refer to this document plus the appended snippet (line 9 onwards).
BASE = """\
stack: demo
region: us-east-1
instances:
  types: [t3.small]
services:
  api:
    image: bitnami/node-example:0.0.1
    container_port: 3000
"""


def _with_instances(extra: str) -> str:
    """BASE with lines added under `instances:` (they start at line 5)."""
    lines = textwrap.indent(textwrap.dedent(extra).strip("\n"), "  ")
    return BASE.replace("  types: [t3.small]\n", f"  types: [t3.small]\n{lines}\n")


def _svc(extra: str) -> str:
    """BASE with lines added to services.api (they start at line 9)."""
    return BASE + textwrap.indent(textwrap.dedent(extra).strip("\n"), "    ") + "\n"


SCHEDULED = """
scaling:
  min: 1
  max: 3
  scheduled:
    - name: a
      schedule: "{schedule}"
      min: 2"""
STEP = """
scaling:
  min: 1
  max: 3
  step_scaling:
    - name: s
      alarm: {{namespace: n, metric: m, threshold: 1, period: {period}}}
      steps: [{{lower: 0, change: 1}}]"""

# (id, yaml, path, message fragment, line)
ERRORS = [
    # --- unknown keys, with a "did you mean" from the model that owns the key
    ("unknown-top", BASE + "servics: {}\n", "servics", "unknown key (did you mean 'services'?)", 9),
    ("unknown-service-key", _svc("imag: x"), "services.api.imag", "did you mean 'image'?", 9),
    (
        "unknown-instances-key",
        _with_instances("on_demand_percentage: 5"),
        "instances.on_demand_percentage",
        "did you mean 'on_demand_percent'?",
        5,
    ),
    ("unknown-nested", _svc("health_check: {pth: /x}"), "services.api.health_check.pth", "did you mean 'path'?", 9),
    (
        "unknown-in-list",
        _svc("placement: [{type: spread, fild: x}]"),
        "services.api.placement.0.fild",
        "did you mean 'field'?",
        9,
    ),
    ("unknown-no-guess", BASE + "zzzz: 1\n", "zzzz", "unknown key", 9),
    # --- missing and wrong types
    ("missing-stack", "services:\n  api: {image: x, container_port: 80}\n", "stack", "required, but missing", None),
    ("missing-services", "stack: demo\n", "services", "required, but missing", None),
    ("services-empty", "stack: demo\nservices: {}\n", "services", "at least 1 item", 2),
    (
        "services-list",
        "stack: demo\nservices: [a]\n",
        "services",
        "should be a mapping (key: value lines), not a list",
        2,
    ),
    (
        "service-null",
        "stack: demo\nservices:\n  api:\n",
        "services.api",
        "empty (YAML reads a key with nothing under it as null): write its settings under it",
        3,
    ),
    ("wrong-type-int", _svc("cpu: lots"), "services.api.cpu", "valid integer", 9),
    ("wrong-type-fraction", _svc("cpu: 1.5"), "services.api.cpu", "fractional part", 9),
    ("wrong-type-str", BASE.replace("stack: demo", "stack: 5"), "stack", "valid string", 1),
    (
        "tag-value-number",
        BASE + "tags: {cost-center: 1234}\n",
        "tags.cost-center",
        "input should be a valid string: YAML reads this unquoted value as the number 1234; write it in quotes",
        9,
    ),
    ("tag-value-float", BASE + "tags: {version: 1.10}\n", "tags.version", "as the number 1.1; write it in quotes", 9),
    ("tag-value-yes", BASE + "tags: {billable: yes}\n", "tags.billable", "as the boolean true; write it in quotes", 9),
    ("tag-value-empty", BASE + "tags: {team: }\n", "tags.team", "as empty (null); write it in quotes", 9),
    (
        "bad-literal",
        _with_instances("spot_allocation_strategy: cheapest"),
        "instances.spot_allocation_strategy",
        "price-capacity-optimized",
        5,
    ),
    (
        "bad-duration",
        _svc("deregistration_delay: soon"),
        "services.api.deregistration_delay",
        "'soon' is not a duration",
        9,
    ),
    ("bad-pattern-stack", BASE.replace("stack: demo", "stack: Demo"), "stack", "'Demo' is not valid here", 1),
    ("bad-region", BASE.replace("region: us-east-1", "region: useast"), "region", "'useast' is not valid", 2),
    ("bad-service-name", BASE.replace("  api:", "  API:"), "services.API", "'API' is not valid here", 6),
    ("bad-ami", _with_instances("ami: al2024"), "instances.ami", "did you mean 'al2023'?", 5),
    ("bad-retention", _svc("log_retention_days: 31"), "services.api.log_retention_days", "nearest: 30", 9),
    (
        "bad-secret-arn",
        _svc("secrets: {DB: 'arn:aws:s3:::bucket/db'}"),
        "services.api.secrets",
        "'arn:aws:s3:::bucket/db' is not a secret reference ECS accepts; accepted: a Secrets Manager",
        9,
    ),
    ("reserved-tag", BASE + "tags: {'spotecs:x': y}\n", "tags", "reserved", 9),
    (
        "duplicate-type",
        BASE.replace("[t3.small]", "[t3.small, t3.small]"),
        "instances.types",
        "listed twice: t3.small",
        4,
    ),
    ("no-types", BASE.replace("[t3.small]", "[]"), "instances.types", "at least 1 item", 4),
    # --- out of range
    (
        "port-range",
        _svc("container_port: 70000").replace("    container_port: 3000\n", ""),
        "services.api.container_port",
        "less than or equal to 65535",
        8,
    ),
    (
        "percent-range",
        _with_instances("on_demand_percent: 101"),
        "instances.on_demand_percent",
        "less than or equal to 100",
        5,
    ),
    ("disk-range", _with_instances("disk_gib: 8"), "instances.disk_gib", "greater than or equal to 30", 5),
    (
        "max-percent-range",
        _svc("deployment: {max_percent: 300}"),
        "services.api.deployment.max_percent",
        "less than or equal to 200",
        9,
    ),
    # --- cross-field
    (
        "memory-soft-over-hard",
        _svc("memory_soft: 1024"),
        "services.api.memory_soft",
        "must not exceed memory_hard (512)",
        9,
    ),
    (
        "memory-none",
        _svc("memory_soft: null\nmemory_hard: null"),
        "services.api.memory_soft",
        "set memory_soft, memory_hard or both",
        9,
    ),
    ("instances-min-max", _with_instances("min: 5\nmax: 2"), "instances.min", "must not exceed max (2)", 5),
    ("instances-desired", _with_instances("desired: 9"), "instances.desired", "between min (1) and max (4)", 5),
    (
        "health-timeout",
        _svc("health_check: {interval: 5, timeout: 5}"),
        "services.api.health_check.timeout",
        "shorter than interval (5s)",
        9,
    ),
    ("subnets-need-vpc", BASE + "network: {subnets: [subnet-0a]}\n", "network.subnets", "set network.vpc_id", 9),
    (
        "binpack-field",
        _svc("placement: [{type: binpack, field: attribute:x}]"),
        "services.api.placement.0.field",
        "cpu or memory",
        9,
    ),
    (
        "second-web-no-routing",
        BASE + "  web:\n    image: x\n    container_port: 80\n",
        "services.web.routing",
        "only the first web service (api)",
        9,
    ),
    (
        "worker-routing",
        "stack: demo\nservices:\n  w:\n    image: x\n    routing: {paths: [/a]}\n",
        "services.w.routing",
        "worker",
        5,
    ),
    (
        "worker-requests-scaling",
        "stack: demo\nservices:\n  w:\n    image: x\n    scaling: {min: 1, max: 2, target_tracking: "
        "[{metric: requests, target: 100}]}\n",
        "services.w.scaling.target_tracking",
        "needs a load balancer",
        5,
    ),
    (
        "step-scaling-gap",
        _svc("""
        scaling:
          min: 1
          max: 3
          step_scaling:
            - name: s
              alarm: {namespace: n, metric: m, threshold: 1}
              steps: [{lower: 0, upper: 10, change: 1}, {lower: 20, change: 2}]
        """),
        "services.api.scaling.step_scaling.0.steps",
        "must be contiguous",
        15,
    ),
    (
        "long-target-group-name",
        BASE.replace("  api:", "  a-very-long-service-name-xyz" + ":"),
        "services.a-very-long-service-name-xyz",
        "target group name 'demo-a-very-long-service-name-xyz' has 33 characters; AWS allows 1 to 32",
        6,
    ),
    # --- the article's traps
    (
        "deployment-1-task-50-150",
        _svc("desired_count: 1\ndeployment: {min_healthy_percent: 50, max_percent: 150}"),
        "services.api.deployment",
        "with 1 task(s)",
        10,
    ),
    (
        "deployment-trap-dashed-service-name",
        BASE.replace("  api:", "  my-api:") + "    desired_count: 1\n    deployment: {min_healthy_percent: 50, "
        "max_percent: 150}\n",
        "services.my-api.deployment",
        "with 1 task(s)",
        10,
    ),
    (
        "deployment-trap-within-scaling-range",
        _svc("desired_count: 2\ndeployment: {min_healthy_percent: 50, max_percent: 150}\nscaling: {min: 1, max: 4}"),
        "services.api.deployment",
        "can never make progress",
        10,
    ),
    (
        "stop-timeout-over-notice",
        _with_instances("container_stop_timeout: 3m"),
        "instances.container_stop_timeout",
        "180s is longer than the 2-minute spot notice",
        5,
    ),
    (
        "service-stop-timeout-range",
        _svc("stop_timeout: 121"),
        "services.api.stop_timeout",
        "less than or equal to 120",
        9,
    ),
    (
        "deregistration-plus-stop",
        _svc("deregistration_delay: 90"),
        "services.api.deregistration_delay",
        "90s of draining plus a 60s stop timeout",
        9,
    ),
    (
        "service-stop-plus-default-delay",
        _svc("stop_timeout: 100"),
        "services.api.deregistration_delay",
        "30s of draining plus a 100s stop timeout",
        6,
    ),
    (
        "agent-auth-data",
        _with_instances("ecs_agent: {ECS_ENGINE_AUTH_DATA: x}"),
        "instances.ecs_agent",
        "ECS_ENGINE_AUTH_DATA: registry credentials must not go into user data",
        5,
    ),
    (
        "agent-auth-type",
        _with_instances("ecs_agent: {ECS_ENGINE_AUTH_TYPE: docker}"),
        "instances.ecs_agent",
        "Secrets Manager",
        5,
    ),
    (
        "environment-auth",
        _svc("environment: {ECS_ENGINE_AUTH_DATA: x}"),
        "services.api.environment",
        "registry credentials must not go into user data",
        9,
    ),
    (
        "agent-managed-key",
        _with_instances("ecs_agent: {ECS_CLUSTER: other}"),
        "instances.ecs_agent",
        "set by spotecs",
        5,
    ),
    ("agent-not-ecs", _with_instances("ecs_agent: {FOO: x}"), "instances.ecs_agent", "not an ECS agent setting", 5),
    # --- values AWS would refuse (issue 12)
    (
        "cron-five-fields",
        _svc(SCHEDULED.format(schedule="cron(61 25 * * *)")),
        "services.api.scaling.scheduled.0.schedule",
        "'cron(61 25 * * *)': a cron expression has 6 fields",
        14,
    ),
    (
        "cron-out-of-range",
        _svc(SCHEDULED.format(schedule="cron(61 8 ? * TUE *)")),
        "services.api.scaling.scheduled.0.schedule",
        "minutes: 61 is out of range 0-59",
        14,
    ),
    (
        "cron-both-days",
        _svc(SCHEDULED.format(schedule="cron(0 8 * * MON *)")),
        "services.api.scaling.scheduled.0.schedule",
        "exactly one of day-of-month and day-of-week must be '?'",
        14,
    ),
    (
        "rate-unit",
        _svc(SCHEDULED.format(schedule="rate(2 fortnights)")),
        "services.api.scaling.scheduled.0.schedule",
        "is not a rate",
        14,
    ),
    (
        "timezone",
        _svc(SCHEDULED.format(schedule="rate(5 minutes)") + "\n      timezone: Mars/Olympus"),
        "services.api.scaling.scheduled.0.timezone",
        "'Mars/Olympus' is not an IANA time zone",
        16,
    ),
    (
        "alarm-period",
        _svc(STEP.format(period=45)),
        "services.api.scaling.step_scaling.0.alarm.period",
        "45s is not an alarm period CloudWatch accepts: 10, 30 or a multiple of 60",
        14,
    ),
    (
        "host-pattern",
        _svc("routing: {hosts: ['api example com']}"),
        "services.api.routing.hosts",
        "'api example com' is not a host name pattern",
        9,
    ),
    ("host-no-dot", _svc("routing: {hosts: [localhost]}"), "services.api.routing.hosts", "needs a '.'", 9),
    ("path-pattern", _svc("routing: {paths: ['/a b']}"), "services.api.routing.paths", "not a path pattern", 9),
    (
        "image-reference",
        BASE.replace("bitnami/node-example:0.0.1", "'Bad Image::latest!'"),
        "services.api.image",
        "is not an image reference",
        7,
    ),
    (
        "image-upper-case",
        BASE.replace("bitnami/node-example:0.0.1", "ghcr.io/MyOrg/app:1.0"),
        "services.api.image",
        "a repository name must be lower case",
        7,
    ),
    ("desired-over-ecs", _svc("desired_count: 5001"), "services.api.desired_count", "less than or equal to 5000", 9),
    (
        "desired-over-scaling-max",
        _svc("desired_count: 5\nscaling: {min: 1, max: 3}"),
        "services.api.desired_count",
        "5 is above scaling.max (3)",
        9,
    ),
    (
        "too-many-tags",
        BASE + "tags: {" + ", ".join(f"t{i}: v" for i in range(47)) + "}\n",
        "tags",
        "47 tags, but AWS allows 50 per resource and spotecs and ECS add 4 of their own (spotecs:stack, "
        "spotecs:managed, Name, AmazonECSManaged): at most 46",
        9,
    ),
    ("tag-key-length", BASE + f"tags: {{{'k' * 128}: v}}\n", "tags", "a tag key has 1 to 127 characters", 9),
    ("tag-ecs", BASE + "tags: {AmazonECSManaged: 'true'}\n", "tags", "reserved for the tag ECS sets", 9),
    ("tag-spotecs-case", BASE + "tags: {'SPOTECS:stack': y}\n", "tags", "reserved for the tags spotecs sets", 9),
    (
        "tag-keys-differ-in-case",
        BASE + "tags: {Team: a, team: b}\n",
        "tags",
        "'team' and 'Team': IAM takes tag keys without their case, keep one of them",
        9,
    ),
    ("tag-value-tab", BASE + 'tags: {team: "a\\tb"}\n', "tags", "'team': a tag value has letters, digits, spaces", 9),
    ("tag-value-line-break", BASE + "tags:\n  team: |\n    two\n    lines\n", "tags", "only, not '\\n'", 9),
    ("tag-key-tab", BASE + 'tags: {"a\\tb": x}\n', "tags", "'a\\tb': a tag key has letters, digits", 9),
    ("tag-value-comma", BASE + "tags: {team: 'a,b'}\n", "tags", "only, not ','", 9),
    ("tag-value-length", BASE + f"tags: {{k: {'v' * 257}}}\n", "tags", "a tag value has at most 256 characters", 9),
    ("tag-aws", BASE + "tags: {'AWS:x': y}\n", "tags", "reserved by AWS", 9),
    ("tag-name", BASE + "tags: {Name: y}\n", "tags", "reserved for the tags spotecs sets itself", 9),
    (
        "ssl-policy",
        BASE + "load_balancer: {ssl_policy: ELBSecurityPolicy-TLS13-1-2-2021-07}\n",
        "load_balancer.ssl_policy",
        "did you mean 'ELBSecurityPolicy-TLS13-1-2-2021-06'?",
        9,
    ),
    (
        "same-path-and-host",
        BASE
        + "    routing: {paths: [/api/*]}\n  web:\n    image: x\n    container_port: 80\n"
        + "    routing: {paths: [/api/*]}\n",
        "services.web.routing",
        "path /api/* on host * is already routed to api",
        13,
    ),
    (
        "shared-priority",
        BASE
        + "    routing: {paths: [/a/*], priority: 7}\n  web:\n    image: x\n    container_port: 80\n"
        + "    routing: {paths: [/b/*], priority: 7}\n",
        "services.web.routing.priority",
        "api, web share listener rule priority 7",
        13,
    ),
    (
        "too-many-conditions",
        _svc("routing: {paths: [/a, /b, /c], hosts: [a.example.com, b.example.com, c.example.com]}"),
        "services.api.routing",
        "6 paths and hosts, but a load balancer rule matches at most 5",
        9,
    ),
    ("env-name", _svc("environment: {MY-VAR: x}"), "services.api.environment", "'MY-VAR' is not an environment", 9),
    ("env-digit", _svc("environment: {1X: x}"), "services.api.environment", "'1X' is not an environment", 9),
    (
        "env-and-secret",
        _svc("environment: {DB: x}\nsecrets: {DB: 'arn:aws:ssm:us-east-1:123456789012:parameter/db'}"),
        "services.api.secrets",
        "DB also set in environment",
        10,
    ),
    (
        "one-target-per-metric",
        _svc("scaling: {min: 1, max: 4, target_tracking: [{metric: cpu, target: 60}, {metric: cpu, target: 80}]}"),
        "services.api.scaling.target_tracking",
        "'cpu' is listed 2 times; keep one target per metric",
        9,
    ),
    (
        "termination-protection",
        _with_instances("scale_in_protection: false"),
        "capacity_provider.managed_termination_protection",
        "needs instances.scale_in_protection: true",
        None,
    ),
    # --- names AWS would refuse (issue 9)
    (
        "stack-trailing-hyphen",
        BASE.replace("stack: demo", "stack: demo-"),
        "stack",
        "load balancer name 'demo-' has characters AWS does not allow there (letters, digits and hyphens only, "
        "not beginning or ending with a hyphen)",
        1,
    ),
    (
        "stack-internal",
        BASE.replace("stack: demo", "stack: internal-shop"),
        "stack",
        "load balancer name 'internal-shop' starts with 'internal-', which AWS reserves",
        1,
    ),
    (
        "service-trailing-hyphen",
        BASE.replace("  api:", "  api-:"),
        "services.api-",
        "target group name 'demo-api-' has characters AWS does not allow there",
        6,
    ),
    (
        "bucket-reserved-prefix",
        BASE.replace("stack: demo", "stack: xn--shop") + "load_balancer: {access_logs: {}}\n",
        "stack",
        "S3 bucket name 'xn--shop-alb-logs-123456789012' starts with 'xn--', which AWS reserves",
        1,
    ),
    (
        "bucket-reserved-suffix",
        BASE + "load_balancer: {access_logs: {bucket: logs--x-s3}}\n",
        "load_balancer.access_logs.bucket",
        "ends with '--x-s3', which AWS reserves",
        9,
    ),
    (
        "agent-value-newline",
        _with_instances('ecs_agent: {ECS_LOGLEVEL: "debug\\nECS_CLUSTER=other"}'),
        "instances.ecs_agent",
        "ECS_LOGLEVEL: the value must be a single line",
        5,
    ),
]


@pytest.mark.parametrize(("text", "path", "fragment", "line"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_stack_file_is_one_line_with_path_and_line(text: str, path: str, fragment: str, line: int | None) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, file="stack.yaml")
    e = info.value
    assert e.path == path
    assert fragment in e.message
    assert e.line == line
    rendered = str(e)
    assert "\n" not in rendered
    where = f"stack.yaml:{line}" if line is not None else "stack.yaml"
    assert rendered == f"{where}: {path}: {e.message}"
    assert e.exit_code is ExitCode.USAGE


# (id, yaml, message fragment, "line:column")
SYNTAX = [
    ("unclosed-list", "stack: demo\nservices: [a\n", "expected ',' or ']'", "3:1"),
    ("bad-indent", "stack: demo\n  bad: indent\n", "mapping values are not allowed here", "2:6"),
    ("duplicate-key", "stack: demo\nstack: other\nservices: {}\n", "duplicate key 'stack'", "2:1"),
    ("duplicate-nested", BASE + "    image: other\n", "duplicate key 'image'", "9:5"),
    ("tab", "stack: demo\n\tservices: {}\n", "cannot start any token", "2:1"),
    ("unhashable-key", "stack: demo\n? [a, b]\n: 1\n", "unhashable key", "2:3"),
]


@pytest.mark.parametrize(("text", "fragment", "where"), [s[1:] for s in SYNTAX], ids=[s[0] for s in SYNTAX])
def test_yaml_syntax_error_names_line_and_column(text: str, fragment: str, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, file="stack.yaml")
    assert str(info.value).startswith(f"stack.yaml:{where}: YAML syntax error: ")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("just text\n", "top level must be a mapping"),
    ],
)
def test_empty_or_non_mapping_document(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        parse(text, file="stack.yaml")
    assert str(info.value).startswith("stack.yaml: ")


def test_every_problem_of_the_file_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = (
        BASE.replace("  types: [t3.small]\n", "  types: [t3.small]\n  min: 5\n  max: 2\n")
        + "    cpu: lots\n    memory_soft: 1024\n    health_check: {pth: /x}\n"
        + "  worker:\n    image: x\n    routing: {paths: [/a]}\n"
        + "tags: {'aws:a': x, 'spotecs:b': y}\n"
    )
    f = tmp_path / "s.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(f)
    lines = str(info.value).splitlines()
    assert lines == [
        f"6 problems in {f}:",
        f"  {f}:13: services.api.health_check.pth: unknown key (did you mean 'path'?)",
        f"  {f}:5: instances.min: must not exceed max (2)",
        f"  {f}:11: services.api.cpu: input should be a valid integer, unable to parse string as an integer",
        f"  {f}:16: services.worker.routing: a service without container_port is a worker and gets no load "
        "balancer routing",
        f"  {f}:17: tags: 'aws:a': tag keys starting with aws: are reserved by AWS",
        f"  {f}:17: tags: 'spotecs:b': reserved for the tags spotecs sets itself (spotecs:*, Name)",
    ]
    # The first problem is also the error's own path and line (what a single-problem caller reads).
    assert (info.value.path, info.value.line) == ("services.api.health_check.pth", 13)
    assert len(info.value.errors) == 6


def test_rules_of_one_section_are_all_reported() -> None:
    with pytest.raises(ConfigError) as info:
        parse(_with_instances("min: 5\nmax: 2\ndesired: 9\non_demand_base: 3"), file="s.yaml")
    assert [(e.path, e.line) for e in info.value.errors] == [
        ("instances.min", 5),
        ("instances.desired", 7),
        ("instances.on_demand_base", 8),
    ]


def test_line_of_a_field_for_plan_time_checks() -> None:
    s = parse(BASE.replace("[t3.small]", "\n    - t3.small\n    - m5.large"), file="stack.yaml")
    assert s.line_of("instances.types[1]") == 6
    assert s.line_of("instances.types.0") == 5
    assert s.line_of("services.api.container_port") == 10
    # A default has no line of its own: its nearest written parent's.
    assert s.line_of("services.api.health_check.path") == 8
    assert s.cite("instances.types[1]", "not offered") == "stack.yaml:6: instances.types[1]: not offered"
    assert make_free_stack().cite("instances.types", "x") == "instances.types: x"


def make_free_stack() -> Stack:
    """A stack built without a file: it cites paths only."""
    return Stack.model_validate({"stack": "demo", "services": {"api": {"image": "x"}}})


def test_unknown_key_is_reported_before_the_missing_key_it_caused() -> None:
    # A typo'd required key is both "unknown" and "missing": the typo is the useful message.
    with pytest.raises(ConfigError) as info:
        parse("stack: demo\nservice:\n  api: {image: x}\n")
    assert info.value.path == "service"
    assert "did you mean 'services'?" in info.value.message


def test_load_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load(missing)
    assert str(info.value) == f"{missing}: no such file; pass the stack file with -f FILE"


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load(tmp_path)


def test_load_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_bytes(b"stack: \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load(f)


def test_load_names_the_file_in_errors(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(_svc("memory_soft: 1024"))
    with pytest.raises(ConfigError) as info:
        load(f)
    assert str(info.value) == f"{f}:9: services.api.memory_soft: must not exceed memory_hard (512)"


# ----------------------------------------------------------------------------- valid input


def test_minimal_stack_defaults() -> None:
    s = parse(BASE)
    assert isinstance(s, Stack)
    assert s.cluster_name == "demo"
    assert s.web_services() == ["api"]
    assert s.stop_timeout("api") == 60
    assert s.instances.uses_spot
    assert (s.services["api"].deployment.min_healthy_percent, s.services["api"].deployment.max_percent) == (50, 200)
    assert s.warnings() == []
    assert s.services["api"].log_retention_days == 30


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90),
        ("90", 90),
        ("90s", 90),
        ("1m", 60),
        ("1m30s", 90),
        (" 2m ", 120),
        ("0s", 0),
    ],
)
def test_durations(value: object, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["1h", "soon", "1.5m", "m", "-5s"])
def test_bad_durations(value: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(value)


def test_article_stop_timeout_1m_is_accepted() -> None:
    s = parse(_with_instances("container_stop_timeout: 1m"))
    assert s.instances.container_stop_timeout == 60


def test_stop_timeout_exactly_the_spot_notice_is_accepted_on_demand() -> None:
    s = parse(_with_instances(f"container_stop_timeout: {SPOT_NOTICE_SECONDS}\non_demand_percent: 100"))
    assert s.instances.container_stop_timeout == SPOT_NOTICE_SECONDS


def test_draining_rule_applies_only_with_spot() -> None:
    # All on-demand: no spot notice to fit in, so a long drain is fine.
    s = parse(_with_instances("on_demand_percent: 100") + "    deregistration_delay: 90\n")
    assert s.services["api"].deregistration_delay == 90


def test_draining_rule_sum_of_exactly_120_is_accepted() -> None:
    s = parse(_svc("deregistration_delay: 60"))
    assert s.services["api"].deregistration_delay + s.stop_timeout("api") == SPOT_NOTICE_SECONDS


def test_deployment_percents_that_can_progress() -> None:
    # 3 tasks at 50/150: ECS may stop one (floor 2 < 3), so it progresses.
    s = parse(_svc("desired_count: 3\ndeployment: {min_healthy_percent: 50, max_percent: 150}"))
    assert s.services["api"].deployment.max_percent == 150


def test_environment_values_become_strings_and_command_splits() -> None:
    s = parse(_svc("environment: {PORT: 3000, DEBUG: true, RATIO: 0.5}\ncommand: npm,start"))
    assert s.services["api"].environment == {"PORT": "3000", "DEBUG": "true", "RATIO": "0.5"}
    assert s.services["api"].command == ["npm", "start"]


def test_yaml_merge_keys_share_settings_between_services() -> None:
    text = BASE.replace("  api:\n", "  api: &web\n") + ("  admin:\n    <<: *web\n    routing: {paths: [/admin/*]}\n")
    s = parse(text)
    assert s.services["admin"].image == "bitnami/node-example:0.0.1"
    assert s.services["admin"].container_port == 3000


def test_config_module_makes_no_aws_call(monkeypatch: pytest.MonkeyPatch) -> None:

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("config must not touch AWS")

    monkeypatch.setattr(boto3, "client", boom)
    monkeypatch.setattr(boto3, "Session", boom)
    with pytest.raises(ConfigError):
        parse(_svc("memory_soft: 1024"))
    parse(BASE)


# ----------------------------------------------------------------------------- warnings


@pytest.mark.parametrize(
    ("instances", "service", "fragment"),
    [
        ("", "deployment: {min_healthy_percent: 100}", "100 with a spot-heavy mix (80% spot)"),
        ("on_demand_percent: 50", "deployment: {min_healthy_percent: 100}", "(50% spot)"),
        ("on_demand_percent: 0", "deployment: {min_healthy_percent: 100}", "(100% spot)"),
        ("on_demand_percent: 60", "deployment: {min_healthy_percent: 100}", None),
        ("on_demand_percent: 100", "deployment: {min_healthy_percent: 0}", "expect downtime"),
        ("on_demand_percent: 100", "desired_count: 1\ndeployment: {min_healthy_percent: 50}", None),
        ("on_demand_percent: 100", "desired_count: 1\ndeployment: {min_healthy_percent: 40}", None),
    ],
)
def test_warnings(instances: str, service: str, fragment: str | None) -> None:
    text = _with_instances(instances) if instances else BASE
    if service:
        text += textwrap.indent(service, "    ") + "\n"
    warnings = parse(text).warnings()
    if fragment is None:
        assert warnings == []
    else:
        assert any(fragment in w for w in warnings), warnings
        assert all(w.startswith("services.api.deployment.min_healthy_percent: ") for w in warnings)


def test_no_spot_warning_when_base_covers_max() -> None:
    # on_demand_base >= max: every instance is on-demand, whatever the percent says.
    text = _with_instances("on_demand_base: 4\nmax: 4") + "    deployment: {min_healthy_percent: 100}\n"
    assert parse(text).warnings() == []


# ----------------------------------------------------------------------------- schema


def test_json_schema() -> None:
    schema = json.loads(json.dumps(config.json_schema()))
    assert "services" in schema["properties"]
    assert schema["required"] == ["stack", "services"]
    assert schema["additionalProperties"] is False
    assert schema["title"] == "spotecs stack file"


def _yaml(service: str, **extra: str) -> str:
    lines = [
        "stack: demo",
        "instances:",
        "  types: [t3.small]",
        *extra.get("instances", "").splitlines(),
        "services:",
        "  api:",
        "    image: app:1",
        *(f"    {line}" for line in service.splitlines()),
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("service", "instances", "message"),
    [
        ("memory_soft: 600\nmemory_hard: 512", "", "services.api.memory_soft: must not exceed memory_hard (512)"),
        (
            "desired_count: 1\ndeployment:\n  min_healthy_percent: 50\n  max_percent: 150",
            "",
            "a deployment can never make progress",
        ),
        (
            "container_port: 3000\nderegistration_delay: 90",
            "  container_stop_timeout: 60",
            "more than the 2-minute spot notice",
        ),
    ],
)
def test_config_refuses_settings_that_cannot_work(service: str, instances: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse(_yaml(service, instances=instances))


def test_min_healthy_100_with_spot_is_a_warning() -> None:
    risky = "container_port: 3000\ndeployment: {min_healthy_percent: 100}"
    stack = parse(_yaml(risky))
    assert any("min_healthy_percent: 100 with a spot-heavy mix" in w for w in stack.warnings())
    on_demand = parse(_yaml(risky, instances="  on_demand_percent: 100"))
    assert on_demand.warnings() == []
    assert parse(_yaml("container_port: 3000")).warnings() == []  # the default trips no warning


# ----------------------------------------------------------------------------- values AWS accepts


@pytest.mark.parametrize(
    "schedule",
    [
        "cron(0 8 ? * TUE *)",
        "cron(0/15 9-17 ? * MON-FRI *)",
        "cron(0 0 L * ? 2030)",
        "cron(30 6 ? * 6#3 *)",
        "cron(0 12 15W JAN,JUL ? *)",
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(2 days)",
        "at(2030-12-24T18:00:00)",
    ],
)
def test_schedules_aws_accepts(schedule: str) -> None:
    assert formats.schedule_problems(schedule) == []


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ("cron(0 24 ? * * *)", "hours: 24 is out of range 0-23"),
        ("cron(0 8 ? * FUN *)", "day-of-week: 'FUN' is not a value"),
        ("cron(0 8 ? 13 * *)", "month: 13 is out of range 1-12"),
        ("cron(0 8 ? * * 1969)", "year: 1969 is out of range 1970-2199"),
        ("cron(0/0 8 ? * * *)", "invalid step"),
        ("cron(? 8 1 * ? *)", "'?' is only for the day fields"),
        ("rate(0 minutes)", "at least 1"),
        ("at(2030-13-01T00:00:00)", "not a valid date"),
        ("every day", "is not a schedule"),
    ],
)
def test_schedules_aws_refuses(schedule: str, fragment: str) -> None:
    assert any(fragment in p for p in formats.schedule_problems(schedule)), formats.schedule_problems(schedule)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Dublin", "America/New_York", "Asia/Kolkata"])
def test_iana_time_zones(tz: str) -> None:
    assert formats.timezone_problems(tz) == []


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.27",
        "bitnami/node-example:0.0.1",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api:1.4.2",
        "localhost:5000/app",
        "ghcr.io/org/my_app__x:v1.0-rc.1",
        "public.ecr.aws/docker/library/redis@sha256:" + "a" * 64,
    ],
)
def test_image_references_docker_accepts(image: str) -> None:
    assert formats.image_problems(image) == []


@pytest.mark.parametrize("image", ["-app", "app:", "app::1", "a b", "app:" + "t" * 129, "x" * 256])
def test_image_references_docker_refuses(image: str) -> None:
    assert formats.image_problems(image) != []


@pytest.mark.parametrize("host", ["api.example.com", "*.example.com", "api-?.example.org", "EXAMPLE.COM"])
def test_host_patterns(host: str) -> None:
    assert formats.host_problems(host) == []


@pytest.mark.parametrize("period", [10, 30, 60, 300, 3600])
def test_alarm_periods_cloudwatch_accepts(period: int) -> None:
    parse(_svc(STEP.format(period=period)))


def test_46_tags_fit_beside_spotecs_and_ecs_own() -> None:
    s = parse(BASE + "tags: {" + ", ".join(f"t{i}: v" for i in range(46)) + "}\n")
    assert len(s.tags) == 46


def test_tags_aws_accepts() -> None:
    # Unicode letters and digits, spaces, the punctuation AWS allows, an empty value, a key of 127.
    tags = {"équipe": "paiements", "Cost Center": "cc 17", "a_b.c:d/e=f+g-h@i": "", "k" * 127: "v" * 256}
    assert formats.tag_problems(tags) == []


def test_every_policy_name_is_elbs_form() -> None:
    assert all(p.startswith("ELBSecurityPolicy-") for p in formats.SSL_POLICIES)
    assert Stack.model_fields["load_balancer"].default_factory().ssl_policy in formats.SSL_POLICIES  # type: ignore[misc]


def test_a_more_specific_route_is_not_a_conflict() -> None:
    text = (
        BASE
        + "    routing: {paths: [/api/*]}\n  web:\n    image: x\n    container_port: 80\n"
        + "    routing: {paths: [/api/*], hosts: [admin.example.com]}\n"
    )
    assert parse(text).rule_priorities() == {"api": 10, "web": 20}


def test_desired_count_below_scaling_min_is_a_warning() -> None:
    s = parse(_svc("desired_count: 1\nscaling: {min: 3, max: 6}"))
    assert s.warnings() == [
        "services.api.desired_count: 1 is below scaling.min (3); auto scaling raises it to 3 at once"
    ]


def test_iam_role_names_are_checked_once_the_region_is_known() -> None:
    s = parse(BASE.replace("region: us-east-1\n", ""), file="s.yaml")
    config.check_region(s, "ap-southeast-4")
    with pytest.raises(ConfigError) as info:
        config.check_region(s, "r" * 60)
    assert str(info.value).startswith("2 problems in s.yaml:\n  s.yaml:1: stack: IAM role name 'demo-rrr")
