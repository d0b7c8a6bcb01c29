"""Workload layer: the load balancer (and its access-log bucket), target groups, listeners,
task definitions, services and service auto scaling.

Step keys and outputs:
  access-log-bucket        bucket                      (only when spotecs creates the bucket)
  load-balancer            arn, dns_name, full_name, url
  target-group:<svc>       arn, name, full_name        (web services only)
  certificate              status, ssl_policy_known    (a data source; HTTPS only)
  listeners                listener_arns, load_balancer_arn
  task-definition:<svc>    arn (the revision), family, revision
  service:<svc>            arn, name, desired_count
  scaling:<svc>            resource_id                 (services with scaling only)
"""

from __future__ import annotations

from spotecs.config import Stack
from spotecs.steps.access_log_bucket import AccessLogBucket
from spotecs.steps.base import Node
from spotecs.steps.certificate import Certificate
from spotecs.steps.listeners import Listeners
from spotecs.steps.load_balancer import LoadBalancer
from spotecs.steps.service import Service
from spotecs.steps.service_scaling import ServiceScaling
from spotecs.steps.target_group import TargetGroup
from spotecs.steps.task_definition import TaskDefinition


def steps(stack: Stack, region: str) -> list[Node]:
    name = stack.stack
    out: list[Node] = []
    web = stack.web_services()
    if web:
        logs = stack.load_balancer.access_logs
        own_bucket = logs is not None and logs.bucket is None
        if own_bucket:
            out.append(AccessLogBucket(name))
        out.append(LoadBalancer(name, own_bucket))
        out += [TargetGroup(name, svc) for svc in web]
        certificate = stack.load_balancer.certificate_arn
        if certificate:
            out.append(Certificate(certificate))
        out.append(Listeners(name, web, https=bool(certificate)))
    for svc, cfg in stack.services.items():
        out += [TaskDefinition(name, svc, task_role=cfg.task_role is not None), Service(name, svc, web=cfg.is_web)]
        if cfg.scaling is not None:
            by_requests = any(t.metric == "requests" for t in cfg.scaling.target_tracking)
            out.append(ServiceScaling(name, svc, cluster=stack.cluster_name, by_requests=by_requests))
    return out
