"""Fills for moto: API behaviour real AWS has and moto 5.2 drops or gets wrong. Each fill is a
small wrapper around one moto response handler (or, where the gap is in the model, one model
method); `install()` applies them all (the sandbox does, once per process) and the unit tests
that need one apply it with monkeypatch."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

# ECS CreateService fields moto's create_service ignores but its update_service stores.
ECS_CREATE_SERVICE_DROPPED = (
    "capacityProviderStrategy",
    "placementStrategy",
    "placementConstraints",
    "deploymentConfiguration",
    "healthCheckGracePeriodSeconds",
    "enableECSManagedTags",
)


def ecs_create_service_keeping_fields(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's CreateService handler so the service keeps the fields real ECS keeps,
    stored the way moto's UpdateService stores them (so DescribeServices shows them)."""
    from moto.core.utils import camelcase_to_underscores

    def create_service(self: Any) -> Any:
        result = original(self)
        cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
        service = self.ecs_backend.services[f"{cluster.name}:{self._get_param('serviceName')}"]
        for name in ECS_CREATE_SERVICE_DROPPED:
            if (value := self._get_param(name)) is not None:
                setattr(service, camelcase_to_underscores(name), value)
        return result

    create_service.__wrapped__ = original  # type: ignore[attr-defined]
    return create_service


def ecs_update_service_deploying(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's UpdateService handler so it does what ECS does at once: a new task definition
    (or forceNewDeployment) starts a new PRIMARY deployment, IN_PROGRESS with no task running,
    the previous one staying ACTIVE; and the running/pending counts stay what they are until the
    tasks change. moto keeps the one deployment (renaming it when forced), stores the task
    definition as given ("family:3") and reports runningCount = the new desiredCount at once, so
    a client that polls right after the update sees the old deployment still PRIMARY."""
    from spotecs.sandbox.services import start_deployment

    def update_service(self: Any) -> Any:
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        key = f"{cluster.name}:{str(self._get_param('service')).rsplit('/', 1)[-1]}"
        before = backend.services.get(key)
        if before is None or not before.deployments:  # not found, or not ECS-deployed: moto's answer
            return original(self)
        previous = dict(before.deployments[0])  # moto renames it in place when forced
        counts = (before.running_count, before.pending_count)
        result = original(self)
        service = backend.services[key]
        service.running_count, service.pending_count = counts
        try:
            service.task_definition = backend.describe_task_definition(service.task_definition).arn
        except Exception:  # deleted meanwhile: nothing to deploy, leave moto's answer as it is
            return result
        if self._get_param("forceNewDeployment") or service.task_definition != previous.get("taskDefinition"):
            service.deployments[0] = previous
            start_deployment(service, service.task_definition)
        elif service.deployments[0].get("desiredCount") != service.desired_count:
            service.deployments[0]["desiredCount"] = service.desired_count
        return result

    update_service.__wrapped__ = original  # type: ignore[attr-defined]
    return update_service


def ec2_launch_template_version_user_data(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's CreateLaunchTemplateVersion handler so the version's UserData is validated and
    stored as base64, as CreateLaunchTemplate stores it. moto keeps the plain request string, and
    every later launch from that version (an ASG scaling out) fails an assertion: HTTP 500."""
    from moto.ec2.utils import parse_user_data

    def create_launch_template_version(self: Any) -> Any:
        # The handler reads the same parsed-parameter dict afterwards, so converting it in place
        # is enough; a bad base64 string raises InvalidUserData before any version is made.
        data = self._get_param("LaunchTemplateData")
        if isinstance(data, dict) and data.get("UserData") is not None:
            data["UserData"] = parse_user_data(data["UserData"])
        return original(self)

    create_launch_template_version.__wrapped__ = original  # type: ignore[attr-defined]
    return create_launch_template_version


def asg_mixed_instances_full_capacity(original: Callable[[Any, int | None], None]) -> Callable[[Any, int | None], None]:
    """Wrap moto's FakeAutoScalingGroup.set_desired_capacity so a mixed-instances group launches
    its whole desired capacity. moto truncates each side of the on-demand/spot split (desired 1 at
    20 % on-demand launches nothing, 2 launches 1); real AWS splits purchase options, never the
    count. Instances needed = ceil(desired / weight of the first override), as moto's weighting
    does; the split itself is the simulated agent's spot marking (instances.mark_spot)."""

    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        policy = self.mixed_instances_policy
        overrides = (policy or {}).get("LaunchTemplate", {}).get("Overrides") or []
        if not overrides:
            original(self, new_capacity)
            return
        capacity = self.min_size if new_capacity is None else new_capacity
        weight = str(overrides[0].get("WeightedCapacity", "1"))
        per_instance = max(int(weight), 1) if weight.isdigit() else 1
        # moto's plain (not mixed) path launches or terminates to exactly the count it is given.
        self.mixed_instances_policy = None
        try:
            original(self, math.ceil((capacity or 0) / per_instance))
        finally:
            self.mixed_instances_policy = policy
        self.desired_capacity = capacity

    set_desired_capacity.__wrapped__ = original  # type: ignore[attr-defined]
    return set_desired_capacity


def asg_update_changing_only_what_is_sent(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's UpdateAutoScalingGroup handler so, as in AWS, it changes what the request names
    and only that. moto ignores TerminationPolicies and CapacityRebalance (so a changed setting
    would be planned again on every run), and forgets the MixedInstancesPolicy when a request
    names none (e.g. MaxSize alone)."""

    def update_auto_scaling_group(self: Any) -> Any:
        group = self.autoscaling_backend.autoscaling_groups.get(self._get_param("AutoScalingGroupName"))
        launch = ("MixedInstancesPolicy", "LaunchTemplate", "LaunchConfigurationName")
        kept = None if group is None or any(self._get_param(p) for p in launch) else group.mixed_instances_policy
        result = original(self)
        if group is not None:
            if kept is not None:
                group.mixed_instances_policy = kept
            if (policies := self._get_param("TerminationPolicies")) is not None:
                group.termination_policies = list(policies) or ["Default"]
            if (rebalance := self._get_bool_param("CapacityRebalance", None)) is not None:
                group.capacity_rebalance = rebalance
        return result

    update_auto_scaling_group.__wrapped__ = original  # type: ignore[attr-defined]
    return update_auto_scaling_group


def ecs_list_tasks_by_service(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap moto's EC2ContainerServiceBackend.list_tasks so serviceName filters, as ECS documents:
    "Specifying a serviceName limits the results to tasks that belong to that service"
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html). moto ignores
    it, so every task of the cluster seems to belong to every service. A service's tasks carry
    the group `service:<name>`, which the simulated scheduler sets as ECS does."""

    signature = inspect.signature(original)

    def list_tasks(self: Any, *args: Any, **kwargs: Any) -> Any:
        tasks = original(self, *args, **kwargs)
        name = signature.bind(self, *args, **kwargs).arguments.get("service_name")
        if not name:
            return tasks
        return [t for t in tasks if t.group == f"service:{str(name).rsplit('/', 1)[-1]}"]

    list_tasks.__wrapped__ = original  # type: ignore[attr-defined]
    return list_tasks


def ecs_stop_task_like_the_agent(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's StopTask handler so a stopped service task is stopped as the agent stops it:
    its load balancer targets deregistered, `stoppedAt` set, containers STOPPED (and the SIGTERM
    line in its log). moto only flips the status, leaving the task's targets registered and no
    stop time (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html)."""
    from moto.core.responses import ActionResult

    from spotecs.sandbox import tasks as task_ops
    from spotecs.sandbox.backends import backend_for

    def stop_task(self: Any) -> Any:
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        task_id = str(self._get_param("task")).rsplit("/", 1)[-1]
        task = next(
            (t for arn, t in backend.tasks.get(cluster.name, {}).items() if arn.rsplit("/", 1)[-1] == task_id), None
        )
        if task is None or task.desired_status != "RUNNING":
            return original(self)
        elbv2 = backend_for("elbv2", backend.account_id, backend.region_name)
        task_ops.stop_task(backend, elbv2, task, self._get_param("reason") or "Task stopped by user")
        return ActionResult({"task": task})

    stop_task.__wrapped__ = original  # type: ignore[attr-defined]
    return stop_task


def logs_live_tail_unavailable(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Replace moto's StartLiveTail handler with the answer of an endpoint that has no live tail.
    moto 5.2's returns one snapshot of matching events and closes the stream at once, while a
    real session stays open (up to 3 hours) and pushes new events as they arrive
    (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StartLiveTail.html).
    A client must not take that snapshot for a session, so the sandbox says it cannot stream and
    `spotecs logs --follow` polls FilterLogEvents instead, as it does wherever live tail fails."""
    from moto.core.exceptions import JsonRESTError

    def start_live_tail(self: Any) -> Any:
        raise JsonRESTError("UnknownOperationException", "StartLiveTail is not available in the sandbox")

    start_live_tail.__wrapped__ = original  # type: ignore[attr-defined]
    return start_live_tail


def _request_fingerprint(response: Any, token_param: str) -> str:
    """What a request asked for, its token left out: a reused token must come with the same."""
    import json

    params = {k: v for k, v in response.querystring.items() if k not in (token_param, "Action", "Version")}
    body = getattr(response, "body", "") or ""
    if not params and body:
        try:
            params = {k: v for k, v in json.loads(body).items() if k != token_param}
        except ValueError:
            params = {"body": body}
    return json.dumps(params, sort_keys=True, default=str)


def _token_store(backend: Any) -> dict[tuple[str, str], tuple[str, Any]]:
    store: dict[tuple[str, str], tuple[str, Any]] | None = getattr(backend, "_spotecs_client_tokens", None)
    if store is None:
        store = {}
        backend._spotecs_client_tokens = store
    return store


def ec2_launch_template_client_token(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's CreateLaunchTemplate handler so its ClientToken makes it idempotent, as EC2
    documents (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html): the
    same token with the same parameters returns the template it created, with other parameters
    fails IdempotentParameterMismatch. moto ignores the token and answers AlreadyExists."""
    from moto.ec2.exceptions import EC2ClientError

    def create_launch_template(self: Any) -> Any:
        token = self._get_param("ClientToken")
        if not token:
            return original(self)
        store, fingerprint = _token_store(self.ec2_backend), _request_fingerprint(self, "ClientToken")
        seen = store.get(("CreateLaunchTemplate", token))
        backend = self.ec2_backend
        if seen is not None and seen[1] in backend.launch_templates:
            if seen[0] != fingerprint:
                raise EC2ClientError("IdempotentParameterMismatch", "The client token was used with other parameters")
            template = backend.launch_templates[seen[1]]
            backend.create_launch_template = lambda *a, **k: template  # the response for the one made
            try:
                return original(self)
            finally:
                del backend.create_launch_template
        result = original(self)
        created = backend.launch_template_name_to_ids.get(self._get_param("LaunchTemplateName"))
        store[("CreateLaunchTemplate", token)] = (fingerprint, created)
        return result

    create_launch_template.__wrapped__ = original  # type: ignore[attr-defined]
    return create_launch_template


def ec2_launch_template_version_client_token(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's CreateLaunchTemplateVersion handler so its ClientToken makes it idempotent
    (the same EC2 document as above): a retried request returns the version the first made
    instead of adding another. moto ignores the token."""
    from moto.ec2.exceptions import EC2ClientError

    def create_launch_template_version(self: Any) -> Any:
        token = self._get_param("ClientToken")
        if not token:
            return original(self)
        backend = self.ec2_backend
        name, tid = self._get_param("LaunchTemplateName"), self._get_param("LaunchTemplateId")
        template = backend.get_launch_template_by_name(name) if name else backend.get_launch_template(tid)
        store, fingerprint = _token_store(backend), _request_fingerprint(self, "ClientToken")
        key = ("CreateLaunchTemplateVersion", token)
        seen = store.get(key)
        if seen is not None and any(v is seen[1] for v in template.versions):
            if seen[0] != fingerprint:
                raise EC2ClientError("IdempotentParameterMismatch", "The client token was used with other parameters")
            template.create_version = lambda *a, **k: seen[1]  # the response for the one made
            try:
                return original(self)
            finally:
                del template.create_version
        result = original(self)
        store[key] = (fingerprint, template.versions[-1])
        return result

    create_launch_template_version.__wrapped__ = original  # type: ignore[attr-defined]
    return create_launch_template_version


def ecs_create_service_client_token(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's CreateService handler so a second create of an ACTIVE service is what ECS makes
    of it (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html,
    clientToken): the same clientToken and parameters return the service already made; anything
    else fails "Creation of service was not idempotent". moto silently replaces the service."""
    from moto.core.responses import ActionResult
    from moto.ecs.exceptions import InvalidParameterException

    def create_service(self: Any) -> Any:
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        key = f"{cluster.name}:{self._get_param('serviceName')}"
        existing = backend.services.get(key)
        token = self._get_param("clientToken")
        store, fingerprint = _token_store(backend), _request_fingerprint(self, "clientToken")
        if existing is not None and existing.status == "ACTIVE":
            if token and store.get(("CreateService", token)) == (fingerprint, existing.arn):
                return ActionResult({"service": existing})
            raise InvalidParameterException("Creation of service was not idempotent.")
        result = original(self)
        if token:
            store[("CreateService", token)] = (fingerprint, backend.services[key].arn)
        return result

    create_service.__wrapped__ = original  # type: ignore[attr-defined]
    return create_service


def _wrap(owner: type, name: str, make: Callable[[Any], Any]) -> None:
    current = getattr(owner, name)
    if not hasattr(current, "__wrapped__"):
        setattr(owner, name, make(current))


def _wrap_again(owner: type, name: str, make: Callable[[Any], Any]) -> None:
    """_wrap for a method another fill may already wrap (the marker is this fill's own)."""
    current = getattr(owner, name)
    if getattr(current, "_spotecs_fill", None) != make.__name__:
        wrapped = make(current)
        wrapped._spotecs_fill = make.__name__
        setattr(owner, name, wrapped)


def install() -> None:
    """Apply every fill to moto's classes; idempotent."""
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
    from moto.autoscaling.models import FakeAutoScalingGroup
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.ec2.responses import EC2Response
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.logs.responses import LogsResponse

    from spotecs.sandbox import (
        drill_fills,
        fills_aas,
        fills_ec2,
        fills_ecs,
        fills_elbv2,
        fills_iam,
        fills_tagging,
        refresh,
        speed,
    )

    _wrap(
        EC2ContainerServiceResponse,
        "create_service",
        lambda h: ecs_create_service_client_token(ecs_create_service_keeping_fields(h)),
    )
    _wrap(EC2ContainerServiceResponse, "update_service", ecs_update_service_deploying)
    _wrap(
        EC2Response,
        "create_launch_template_version",
        lambda h: ec2_launch_template_version_client_token(ec2_launch_template_version_user_data(h)),
    )
    _wrap(EC2Response, "create_launch_template", ec2_launch_template_client_token)
    _wrap(FakeAutoScalingGroup, "set_desired_capacity", asg_mixed_instances_full_capacity)
    _wrap(AutoScalingResponse, "update_auto_scaling_group", asg_update_changing_only_what_is_sent)
    _wrap(LogsResponse, "start_live_tail", logs_live_tail_unavailable)
    _wrap(EC2ContainerServiceBackend, "list_tasks", ecs_list_tasks_by_service)
    _wrap(EC2ContainerServiceResponse, "stop_task", ecs_stop_task_like_the_agent)
    _wrap_again(FakeAutoScalingGroup, "set_desired_capacity", asg_recording_launches)
    _wrap_again(AutoScalingResponse, "describe_scaling_activities", asg_describe_scaling_activities)
    _wrap_again(EC2Response, "describe_spot_price_history", ec2_spot_price_history)
    _wrap(FakeAutoScalingGroup, "replace_autoscaling_group_instances", refresh.stamp_launched_version)
    refresh.install_api(AutoScalingResponse)
    fills_elbv2.install(_wrap)
    fills_iam.install(_wrap)
    fills_ecs.install(_wrap)
    fills_tagging.install(_wrap)
    fills_ec2.install(_wrap_again)  # after refresh.stamp_launched_version, which wraps the same method
    fills_aas.install(_wrap_again)
    if not hasattr(ApplicationAutoScalingResponse, "describe_scaling_activities"):
        ApplicationAutoScalingResponse.describe_scaling_activities = aas_describe_scaling_activities  # type: ignore[attr-defined]

    drill_fills.install(_wrap_again)  # create_load_balancer is fills_elbv2's too
    speed.install(_wrap)


# -- prices and scaling activities (moto: constant spot prices, no activities) --------------

ACTIVITIES = "_spotecs_activities"  # on moto's group / scalable target: newest first
MAX_ACTIVITIES = 100


def record_activity(owner: Any, status: str, description: str, cause: str = "", message: str = "") -> None:
    """Add a scaling activity to a moto auto scaling group or scalable target, as AWS records
    one (the sandbox's own launches, or a test's failed one)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    activity = {
        "id": f"{int(now.timestamp() * 1e6):x}",
        "status": status,
        "description": description,
        "cause": cause or f"At {now:%Y-%m-%dT%H:%M:%SZ} an activity was started.",
        "message": message,
        "start": now,
        "end": None if status == "InProgress" else now,
    }
    activities = getattr(owner, ACTIVITIES, None)
    if activities is None:
        activities = []
        setattr(owner, ACTIVITIES, activities)
    activities.insert(0, activity)
    del activities[MAX_ACTIVITIES:]


def _iso(at: Any) -> str | None:
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def asg_recording_launches(original: Callable[[Any, int | None], None]) -> Callable[[Any, int | None], None]:
    """Wrap FakeAutoScalingGroup.set_desired_capacity so each launch and termination is a
    successful scaling activity, as in the group's Activity history."""

    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        before = {s.instance.id for s in self.instance_states}
        original(self, new_capacity)
        after = {s.instance.id for s in self.instance_states}
        cause = f"a user request set the desired capacity to {self.desired_capacity}"
        for i in sorted(after - before):
            record_activity(self, "Successful", f"Launching a new EC2 instance: {i}", cause)
        for i in sorted(before - after):
            record_activity(self, "Successful", f"Terminating EC2 instance: {i}", cause)

    set_desired_capacity.__wrapped__ = original  # type: ignore[attr-defined]
    return set_desired_capacity


def asg_describe_scaling_activities(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """moto answers DescribeScalingActivities with an empty list; answer the recorded ones.
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html"""
    from moto.core.responses import ActionResult

    def describe_scaling_activities(self: Any) -> Any:
        name = self._get_param("AutoScalingGroupName")
        limit = self._get_int_param("MaxRecords") or 100
        groups = self.autoscaling_backend.autoscaling_groups
        chosen = [groups[name]] if name in groups else [] if name else list(groups.values())
        found = [(g.name, a) for g in chosen for a in getattr(g, ACTIVITIES, [])]
        found.sort(key=lambda pair: pair[1]["start"], reverse=True)
        return ActionResult(
            {
                "Activities": [
                    {
                        "ActivityId": a["id"],
                        "AutoScalingGroupName": group,
                        "Description": a["description"],
                        "Cause": a["cause"],
                        "StartTime": _iso(a["start"]),
                        "EndTime": _iso(a["end"]),
                        "StatusCode": a["status"],
                        "StatusMessage": a["message"],
                        "Progress": 100 if a["end"] else 50,
                    }
                    for group, a in found[:limit]
                ]
            }
        )

    describe_scaling_activities.__wrapped__ = original  # type: ignore[attr-defined]
    return describe_scaling_activities


def aas_describe_scaling_activities(self: Any) -> str:
    """Application Auto Scaling's DescribeScalingActivities, which moto lacks: the activities
    recorded on the scalable targets.
    https://docs.aws.amazon.com/autoscaling/application/APIReference/API_DescribeScalingActivities.html"""
    import json

    namespace = self._get_param("ServiceNamespace")
    resource_id = self._get_param("ResourceId")
    dimension = self._get_param("ScalableDimension")
    limit = self._get_int_param("MaxResults") or 50
    backend = self.applicationautoscaling_backend
    found = []
    for target in backend.describe_scalable_targets(namespace, [resource_id] if resource_id else None, dimension):
        for a in getattr(target, ACTIVITIES, []):
            found.append((target, a))
    found.sort(key=lambda pair: pair[1]["start"], reverse=True)
    return json.dumps(
        {
            "ScalingActivities": [
                {
                    "ActivityId": a["id"],
                    "ServiceNamespace": t.service_namespace,
                    "ResourceId": t.resource_id,
                    "ScalableDimension": t.scalable_dimension,
                    "Description": a["description"],
                    "Cause": a["cause"],
                    "StartTime": a["start"].timestamp(),
                    **({"EndTime": a["end"].timestamp()} if a["end"] else {}),
                    "StatusCode": a["status"],
                    "StatusMessage": a["message"],
                }
                for t, a in found[:limit]
            ]
        }
    )


def ec2_spot_price_history(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """moto answers one constant row per type and zone; answer sample prices that vary by
    type, zone and time (sandbox/prices.py), marked as samples."""
    from datetime import UTC, datetime, timedelta

    from moto.core.responses import ActionResult

    from spotecs.sandbox import prices

    def describe_spot_price_history(self: Any) -> Any:
        types = self._get_param("InstanceTypes", []) or sorted(prices.SAMPLE_ON_DEMAND)
        end = _time(self._get_param("EndTime")) or datetime.now(UTC)
        start = _time(self._get_param("StartTime")) or end - timedelta(hours=3)
        zone = self._get_param("AvailabilityZone")
        zones = [zone] if zone else [z.name for z in self.ec2_backend.describe_availability_zones()]
        self.response_headers[prices.SAMPLE_HEADER] = prices.SAMPLE_NOTE
        return ActionResult({"SpotPriceHistory": prices.spot_history(types, zones, start, end)})

    describe_spot_price_history.__wrapped__ = original  # type: ignore[attr-defined]
    return describe_spot_price_history


def _time(value: Any) -> Any:
    from datetime import UTC, datetime

    if not value:
        return None
    at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)
