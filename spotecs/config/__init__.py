"""The stack file: pydantic models grouped by section (network, compute, load_balancer,
services, scaling, stack), the loader (YAML with line numbers; every problem at once, each as
`file:line: path: message`, exit 2) and the reference (JSON Schema, Markdown). Nothing here
calls AWS.

Every check that needs only the file lives here (ranges, cross-field rules, the article's
deployment-percent and spot-timing traps). Checks that need AWS facts (instance sizes, AMI
architecture) are in `spotecs.checks`.
"""

from spotecs.config.base import SPOT_NOTICE_SECONDS, Model, Problems, Seconds, parse_duration
from spotecs.config.compute import AMI_ALIASES, MANAGED_AGENT_KEYS, CapacityProvider, Cluster, Instances
from spotecs.config.load_balancer import AccessLogs, LoadBalancer
from spotecs.config.loader import check_region, load, parse
from spotecs.config.network import Network
from spotecs.config.reference import json_schema, reference_markdown, reference_rows
from spotecs.config.scaling import Alarm, Scaling, Scheduled, StepAdjustment, StepScaling, TargetTracking
from spotecs.config.services import (
    DEFAULT_PLACEMENT,
    LOG_RETENTION_DAYS,
    ContainerHealthCheck,
    Deployment,
    HealthCheck,
    Placement,
    Routing,
    Service,
)
from spotecs.config.stack import Stack

__all__ = [
    "AMI_ALIASES",
    "DEFAULT_PLACEMENT",
    "LOG_RETENTION_DAYS",
    "MANAGED_AGENT_KEYS",
    "SPOT_NOTICE_SECONDS",
    "AccessLogs",
    "Alarm",
    "CapacityProvider",
    "Cluster",
    "ContainerHealthCheck",
    "Deployment",
    "HealthCheck",
    "Instances",
    "LoadBalancer",
    "Model",
    "Network",
    "Placement",
    "Problems",
    "Routing",
    "Scaling",
    "Scheduled",
    "Seconds",
    "Service",
    "Stack",
    "StepAdjustment",
    "StepScaling",
    "TargetTracking",
    "check_region",
    "json_schema",
    "load",
    "parse",
    "parse_duration",
    "reference_markdown",
    "reference_rows",
]
