"""Custom botocore waiter models for conditions boto3 has no waiter for. Pass the result to
`ctx.wait(...)`; `spotecs.aws.wait` sets the delay and the bound (ctx.timeouts)."""

from __future__ import annotations

from typing import Any

import botocore.waiter

_MODEL = botocore.waiter.WaiterModel(
    {
        "version": 2,
        "waiters": {
            # A deleted capacity provider stays INACTIVE for a while, then disappears.
            "CapacityProviderDeleted": {
                "operation": "DescribeCapacityProviders",
                "delay": 5,
                "maxAttempts": 120,
                "acceptors": [
                    {
                        "state": "success",
                        "matcher": "path",
                        "argument": "length(capacityProviders) == `0`",
                        "expected": True,
                    },
                    {
                        "state": "success",
                        "matcher": "pathAll",
                        "argument": "capacityProviders[].status",
                        "expected": "INACTIVE",
                    },
                    {
                        "state": "failure",
                        "matcher": "pathAny",
                        "argument": "capacityProviders[].updateStatus",
                        "expected": "DELETE_FAILED",
                    },
                ],
            },
            # A force-deleted group lingers ("Delete in progress") until its instances are terminated.
            "AutoScalingGroupDeleted": {
                "operation": "DescribeAutoScalingGroups",
                "delay": 10,
                "maxAttempts": 60,
                "acceptors": [
                    {
                        "state": "success",
                        "matcher": "path",
                        "argument": "length(AutoScalingGroups) == `0`",
                        "expected": True,
                    },
                ],
            },
        },
    }
)


def capacity_provider_deleted(ecs: Any) -> botocore.waiter.Waiter:
    """Wait with capacityProviders=[name]: INACTIVE or gone."""
    return botocore.waiter.create_waiter_with_client("CapacityProviderDeleted", _MODEL, ecs)


def auto_scaling_group_deleted(autoscaling: Any) -> botocore.waiter.Waiter:
    """Wait with AutoScalingGroupNames=[name]: gone, which means its instances are terminated."""
    return botocore.waiter.create_waiter_with_client("AutoScalingGroupDeleted", _MODEL, autoscaling)
