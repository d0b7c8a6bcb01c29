"""The README is part of the product: its reference table is generated from the schema, its
test command is what CI runs, and the examples it names load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spotecs import config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_reference_matches_schema() -> None:
    m = re.search(r"<!-- reference:start -->\n(.*?)<!-- reference:end -->", README, re.S)
    assert m, "README.md lost its reference markers"
    assert m.group(1) == config.reference_markdown(), (
        "README's stack file reference is stale: regenerate it with `spotecs schema --markdown`"
    )


def test_every_schema_field_is_documented() -> None:
    paths = {row[0] for row in config.reference_rows()}
    for path in (
        "instances.container_stop_timeout",
        "services.<name>.memory_soft",
        "capacity_provider.target_capacity",
        "load_balancer.certificate_arn",
    ):
        assert path in paths
        assert f"`{path}`" in README


def test_ci_runs_the_readme_test_command() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.yaml")))
def test_examples_load(example: str) -> None:
    stack = config.load(ROOT / "examples" / example)
    assert stack.services


def test_readme_minimal_stack_and_examples_print_no_warning() -> None:
    minimal = re.search(r"The shortest useful one:\n\n```yaml\n(.*?)```", README, re.S)
    assert minimal, "README.md lost its minimal stack"
    assert config.parse(minimal.group(1)).warnings() == []
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        assert config.load(example).warnings() == [], example.name


def test_article_example_is_the_article() -> None:
    s = config.load(ROOT / "examples" / "article.yaml")
    api = s.services["demo-api"]
    assert s.cluster_name == "DemoApiClusterProd"
    assert (api.image, api.container_port) == ("bitnami/node-example:0.0.1", 3000)
    assert s.instances.types == ["t3.small"]
    assert (s.instances.on_demand_base, s.instances.on_demand_percent) == (0, 50)
    assert api.health_check.success_codes == "200-399"
    assert api.health_check_grace_period == 60
    assert [(p.type, p.field) for p in api.placement] == [
        ("binpack", "cpu"),
        ("spread", "attribute:ecs.availability-zone"),
    ]
    assert api.scaling is not None
    assert [(t.metric, t.target) for t in api.scaling.target_tracking] == [("cpu", 85)]
    assert s.instances.container_stop_timeout == 60
    assert (api.deployment.min_healthy_percent, api.deployment.max_percent) == (50, 200)


def test_production_example_is_what_we_recommend() -> None:
    s = config.load(ROOT / "examples" / "production.yaml")
    assert len(s.instances.types) >= 3
    assert s.instances.spot_allocation_strategy == "price-capacity-optimized"
    assert s.instances.on_demand_percent == 20
    assert s.load_balancer.certificate_arn and s.load_balancer.redirect_http
    assert s.web_services() == ["api"] and "worker" in s.services
    scaling = [svc.scaling for svc in s.services.values() if svc.scaling]
    assert any(sc.scheduled for sc in scaling) and any(sc.step_scaling for sc in scaling)
    assert s.warnings() == []
