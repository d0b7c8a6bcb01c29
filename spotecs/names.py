"""Every AWS name spotecs derives from the stack, and the AWS rule each must follow.

spotecs keeps no state: it finds its resources by these names, so the steps, the orphan search,
the config checks and every command derive them here and nowhere else. Each name has a `Rule`
(length, characters, reserved prefixes and suffixes, from the AWS API reference of the resource)
so a stack file whose names AWS would refuse fails before any AWS call.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spotecs.config import Stack


@dataclass(frozen=True)
class Rule:
    """What AWS accepts for one kind of name."""

    what: str  # "target group name"
    max_len: int
    pattern: str  # the characters allowed, as a full-match regex
    reserved_prefixes: tuple[str, ...] = ()
    reserved_suffixes: tuple[str, ...] = ()
    min_len: int = 1
    case_insensitive_prefixes: bool = False
    allowed: str = ""  # the characters allowed, in words (else the pattern is shown)

    def problem(self, name: str) -> str | None:
        """Why AWS would refuse `name` as this kind of name; None when it is fine."""
        if not self.min_len <= len(name) <= self.max_len:
            return f"{self.what} '{name}' has {len(name)} characters; AWS allows {self.min_len} to {self.max_len}"
        if not re.fullmatch(self.pattern, name):
            allowed = self.allowed or f"allowed: {self.pattern}"
            return f"{self.what} '{name}' has characters AWS does not allow there ({allowed})"
        head = name.lower() if self.case_insensitive_prefixes else name
        for prefix in self.reserved_prefixes:
            if head.startswith(prefix):
                return f"{self.what} '{name}' starts with '{prefix}', which AWS reserves"
        for suffix in self.reserved_suffixes:
            if name.endswith(suffix):
                return f"{self.what} '{name}' ends with '{suffix}', which AWS reserves"
        return None


# ECS names (cluster, service, task definition family, capacity provider): "Up to 255 letters
# (uppercase and lowercase), numbers, underscores, and hyphens" (ECS API reference).
_ECS = r"[A-Za-z0-9_-]+"
# ELBv2 load balancer and target group names: "at most 32 characters, only alphanumeric
# characters or hyphens, and must not begin or end with a hyphen" (ELBv2 API reference).
_ELB = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"

_ECS_ALLOWED = "letters, digits, _ and - only"
_ELB_ALLOWED = "letters, digits and hyphens only, not beginning or ending with a hyphen"
CLUSTER = Rule("ECS cluster name", 255, _ECS, allowed=_ECS_ALLOWED)
SERVICE = Rule("ECS service name", 255, _ECS, allowed=_ECS_ALLOWED)
TASK_FAMILY = Rule("task definition family", 255, _ECS, allowed=_ECS_ALLOWED)
# CreateCapacityProvider: "can't be prefixed with 'aws', 'ecs', or 'fargate'" (any case).
CAPACITY_PROVIDER = Rule(
    "capacity provider name",
    255,
    _ECS,
    reserved_prefixes=("aws", "ecs", "fargate"),
    case_insensitive_prefixes=True,
    allowed=_ECS_ALLOWED,
)
TARGET_GROUP = Rule("target group name", 32, _ELB, allowed=_ELB_ALLOWED)
# CreateLoadBalancer: also "must not begin with 'internal-'".
LOAD_BALANCER = Rule("load balancer name", 32, _ELB, reserved_prefixes=("internal-",), allowed=_ELB_ALLOWED)
# CreateLaunchTemplate LaunchTemplateName: 3 to 128 characters, [a-zA-Z0-9\(\)\.\-/_]+.
LAUNCH_TEMPLATE = Rule("launch template name", 128, r"[A-Za-z0-9().\-/_]+", min_len=3)
# CreateAutoScalingGroup AutoScalingGroupName: 1 to 255 characters (XmlStringMaxLen255).
AUTO_SCALING_GROUP = Rule("auto scaling group name", 255, r"[^\x00-\x1f]+")
# CreateSecurityGroup GroupName: up to 255 characters, a-z A-Z 0-9 spaces and ._-:/()#,@[]+=&;{}!$*;
# "cannot start with sg-".
SECURITY_GROUP = Rule("security group name", 255, r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+", reserved_prefixes=("sg-",))
# CreateRole RoleName: 1 to 64 characters, [\w+=,.@-]+. CreateInstanceProfile allows 128 of
# the same characters; the instance profile shares its role's name, so the role's rule binds.
IAM_ROLE = Rule("IAM role name", 64, r"[\w+=,.@-]+")
# CreateLogGroup logGroupName: 1 to 512 characters, [\.\-_/#A-Za-z0-9]+.
LOG_GROUP = Rule("log group name", 512, r"[.\-_/#A-Za-z0-9]+")
# S3 bucket naming rules (general purpose buckets): 3 to 63 characters, lower case letters,
# digits, dots and hyphens, beginning and ending with a letter or digit; reserved prefixes
# xn--, sthree-, amzn-s3-demo-; reserved suffixes -s3alias, --ol-s3, .mrap, --x-s3.
BUCKET = Rule(
    "S3 bucket name",
    63,
    r"[a-z0-9][a-z0-9.-]*[a-z0-9]",
    allowed="lower case letters, digits, dots and hyphens only, beginning and ending with a letter or digit",
    reserved_prefixes=("xn--", "sthree-", "amzn-s3-demo-"),
    reserved_suffixes=("-s3alias", "--ol-s3", ".mrap", "--x-s3"),
    min_len=3,
)
# PutScalingPolicy PolicyName: 1 to 256 printable characters.
SCALING_POLICY = Rule("scaling policy name", 256, r"[\x20-\x7e]+")
# PutScheduledAction ScheduledActionName: 1 to 256 characters, no control characters, no ':',
# '/' or '|', no leading or trailing space.
_SCHEDULED_CHAR = r"[^\x00-\x1f\x7f-\x9f:/|]"
SCHEDULED_ACTION = Rule("scheduled action name", 256, rf"(?! ){_SCHEDULED_CHAR}+(?<! )")
# PutMetricAlarm AlarmName: 1 to 255 characters, no control characters.
ALARM = Rule("CloudWatch alarm name", 255, r"[^\x00-\x1f]+")


def service_prefix(stack: str) -> str:
    """What every per-service name (service, task definition family, target group) starts with."""
    return f"{stack}-"


def service_of(stack: str, name: str) -> str:
    """The service of the stack file from a per-service AWS name `<stack>-<service>`."""
    return name.removeprefix(service_prefix(stack))


LOCK_PREFIX = "/spotecs/"
LOCK_SUFFIX = "/lock"


def lock_parameter(stack: str) -> str:
    """The SSM parameter that is the stack's run lock (lock.py)."""
    return f"{LOCK_PREFIX}{stack}{LOCK_SUFFIX}"


def is_lock_parameter(name: str) -> bool:
    return name.startswith(LOCK_PREFIX) and name.endswith(LOCK_SUFFIX)


def cluster(stack: str, configured: str | None = None) -> str:
    """The ECS cluster: as configured, else the stack name (rule: CLUSTER)."""
    return configured or stack


def launch_template(stack: str) -> str:
    """`<stack>-instances` (rule: LAUNCH_TEMPLATE)."""
    return f"{stack}-instances"


def auto_scaling_group(stack: str) -> str:
    """`<stack>-instances`, like its launch template (rule: AUTO_SCALING_GROUP)."""
    return f"{stack}-instances"


def security_group(stack: str, role: str) -> str:
    """`<stack>-lb`, `<stack>-instances` (rule: SECURITY_GROUP)."""
    return f"{stack}-{role}"


def instance_role(stack: str, region: str) -> str:
    """`<stack>-<region>-ecs-instance`, also its instance profile's name. IAM is global, hence
    the region: one stack name can be deployed in several regions (rule: IAM_ROLE)."""
    return f"{stack}-{region}-ecs-instance"


def execution_role(stack: str, region: str) -> str:
    """`<stack>-<region>-ecs-execution`, the tasks' execution role (rule: IAM_ROLE)."""
    return f"{stack}-{region}-ecs-execution"


def task_role(stack: str, region: str, service: str) -> str:
    """`<stack>-<region>-<service>-task`, a service's task role (rule: IAM_ROLE); a name longer
    than IAM's 64 characters keeps its head and a digest of the whole, so it stays unique."""
    name = f"{stack}-{region}-{service}-task"
    if len(name) <= 64:
        return name
    import hashlib

    return f"{name[:55]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def fis_role(stack: str, region: str) -> str:
    """`<stack>-<region>-fis-drill`, the role AWS FIS assumes for `spotecs drill` (rule: IAM_ROLE)."""
    return f"{stack}-{region}-fis-drill"


def fis_template(stack: str) -> str:
    """`<stack>-spot-drill`: the `Name` tag of the drill's FIS experiment template (templates have
    no name of their own; a tag value takes up to 256 characters)."""
    return f"{stack}-spot-drill"


def log_group_prefix(stack: str) -> str:
    return f"/ecs/{stack}/"


def log_group(stack: str, service: str) -> str:
    """`/ecs/<stack>/<service>` (rule: LOG_GROUP)."""
    return f"{log_group_prefix(stack)}{service}"


def container_insights_log_group(cluster: str) -> str:
    """Made by Container Insights itself, not by spotecs; teardown removes it after the cluster."""
    return f"/aws/ecs/containerinsights/{cluster}/performance"


def service(stack: str, service: str) -> str:
    """`<stack>-<service>`: as the article advises, named like its task definition family
    (rule: SERVICE)."""
    return f"{service_prefix(stack)}{service}"


def task_family(stack: str, service: str) -> str:
    """`<stack>-<service>` (rule: TASK_FAMILY)."""
    return f"{service_prefix(stack)}{service}"


def target_group(stack: str, service: str) -> str:
    """`<stack>-<service>` (rule: TARGET_GROUP, at most 32 characters)."""
    return f"{service_prefix(stack)}{service}"


def load_balancer(stack: str) -> str:
    """The stack name itself (rule: LOAD_BALANCER, at most 32 characters)."""
    return stack


def access_log_bucket(stack: str, account: str) -> str:
    """`<stack>-alb-logs-<account id>`: bucket names are global across accounts (rule: BUCKET)."""
    return f"{stack}-alb-logs-{account}"


def access_log_bucket_display(stack: str) -> str:
    """The bucket's name in a plan, before the account id is looked up."""
    return access_log_bucket(stack, "<account>")


def capacity_provider_prefix(group: str) -> str:
    """The group's name, or `spotecs-<group>` when the group's name starts with a prefix ECS
    reserves for its own providers (rule: CAPACITY_PROVIDER)."""
    reserved = CAPACITY_PROVIDER.reserved_prefixes
    return f"spotecs-{group}" if group.lower().startswith(reserved) else group


_GROUP_ID = re.compile(r":autoScalingGroup:([0-9a-f-]+):autoScalingGroupName/")


def capacity_provider(group: str, group_arn: str) -> str:
    """`<prefix>-<first 8 hex digits of the group's id>`: ECS refuses a deleted provider's name
    for a while, and a recreated group has a new id, hence a fresh name (rule: CAPACITY_PROVIDER)."""
    m = _GROUP_ID.search(group_arn)
    if not m:
        raise ValueError(f"not an auto scaling group ARN: {group_arn}")
    return f"{capacity_provider_prefix(group)}-{m.group(1).replace('-', '')[:8]}"


def capacity_provider_pattern(group: str) -> re.Pattern[str]:
    """Matches every name `capacity_provider` can give for this group, whatever its id."""
    return re.compile(rf"^{re.escape(capacity_provider_prefix(group))}-[0-9a-f]{{8}}$")


def capacity_provider_display(group: str) -> str:
    """The provider's name in a plan, before the group (hence its id) exists."""
    return f"{capacity_provider_prefix(group)}-<group id>"


def scalable_target(cluster: str, service_name: str) -> str:
    """Application Auto Scaling's resource id of an ECS service: `service/<cluster>/<service>`."""
    return f"service/{cluster}/{service_name}"


def scalable_target_prefix(cluster: str, stack: str) -> str:
    """What the resource id of every scaled service of the stack starts with."""
    return scalable_target(cluster, service_prefix(stack))


def tracking_policy(service_name: str, metric: str) -> str:
    """`<service>-track-<metric>` (rule: SCALING_POLICY)."""
    return f"{service_name}-track-{metric}"


def step_policy_prefix(service_name: str) -> str:
    return f"{service_name}-step-"


def step_policy(service_name: str, name: str) -> str:
    """`<service>-step-<name>`, also the name of the alarm that drives it (rules: SCALING_POLICY,
    ALARM)."""
    return f"{step_policy_prefix(service_name)}{name}"


def scheduled_action(service_name: str, name: str) -> str:
    """`<service>-<name>` (rule: SCHEDULED_ACTION)."""
    return f"{service_name}-{name}"


def scaling_prefix(service_name: str) -> str:
    """What every policy and scheduled action of one service's scaling starts with."""
    return f"{service_name}-"


# An account id only to measure the bucket's name: every account id has 12 digits.
_ANY_ACCOUNT = "123456789012"
_ANY_GROUP_ARN = "arn:aws:autoscaling:r:1:autoScalingGroup:0123abcd-0000:autoScalingGroupName/g"


def derived(stack: Stack, region: str | None = None) -> Iterator[tuple[str, str, Rule]]:
    """(field of the stack file it derives from, name, rule) for every name the stack gives AWS;
    the IAM role names only when the region is known (they carry it)."""
    s = stack.stack
    yield "stack", load_balancer(s), LOAD_BALANCER
    yield "stack", launch_template(s), LAUNCH_TEMPLATE
    yield "stack", auto_scaling_group(s), AUTO_SCALING_GROUP
    for role in ("lb", "instances"):
        yield "stack", security_group(s, role), SECURITY_GROUP
    yield "stack", capacity_provider(auto_scaling_group(s), _ANY_GROUP_ARN), CAPACITY_PROVIDER
    yield ("cluster.name" if stack.cluster.name else "stack"), cluster(s, stack.cluster.name), CLUSTER
    if region:
        yield "stack", instance_role(s, region), IAM_ROLE
        yield "stack", execution_role(s, region), IAM_ROLE
    logs = stack.load_balancer.access_logs
    if logs and logs.bucket:
        yield "load_balancer.access_logs.bucket", logs.bucket, BUCKET
    elif logs:
        yield "stack", access_log_bucket(s, _ANY_ACCOUNT), BUCKET
    for name, svc in stack.services.items():
        field = f"services.{name}"
        yield field, service(s, name), SERVICE
        yield field, task_family(s, name), TASK_FAMILY
        yield field, log_group(s, name), LOG_GROUP
        if svc.is_web:
            yield field, target_group(s, name), TARGET_GROUP
        if svc.scaling is None:
            continue
        svc_name = service(s, name)
        for t in svc.scaling.target_tracking:
            yield f"{field}.scaling.target_tracking", tracking_policy(svc_name, t.metric), SCALING_POLICY
        for i, step in enumerate(svc.scaling.step_scaling):
            yield f"{field}.scaling.step_scaling[{i}].name", step_policy(svc_name, step.name), SCALING_POLICY
            yield f"{field}.scaling.step_scaling[{i}].name", step_policy(svc_name, step.name), ALARM
        for i, action in enumerate(svc.scaling.scheduled):
            yield f"{field}.scaling.scheduled[{i}].name", scheduled_action(svc_name, action.name), SCHEDULED_ACTION


def problems(stack: Stack, region: str | None = None) -> Iterator[tuple[str, str]]:
    """(field, why AWS would refuse the name derived from it) for every derived name."""
    seen = set()
    for field, name, rule in derived(stack, region):
        problem = rule.problem(name)
        if problem and (field, problem) not in seen:
            seen.add((field, problem))
            yield field, problem
