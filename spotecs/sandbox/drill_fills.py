"""Fills for what a spot interruption drill needs and moto does not do (see README.md):
FIS experiments that interrupt (interruptions.py), target groups that list draining targets,
and load balancers that answer HTTP (lb_front.py). `install()` is called by fills.install()."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def fis_start_experiment_interrupting(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap FISBackend.start_experiment: the new experiment's interruptions are scheduled."""
    from spotecs.sandbox import interruptions

    def start_experiment(self: Any, *args: Any, **kwargs: Any) -> Any:
        known = set(self.experiments)
        result = original(self, *args, **kwargs)
        for experiment_id in set(self.experiments) - known:
            interruptions.start(self, self.experiments[experiment_id])
            return self.get_experiment(experiment_id)
        return result

    start_experiment.__wrapped__ = original  # type: ignore[attr-defined]
    return start_experiment


def elbv2_health_with_draining(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ELBv2Backend.describe_target_health: targets deregistered less than the deregistration
    delay ago are listed as `draining`, as ELB lists them; dead targets the health checks have not
    caught yet are still listed `healthy` (lb_front.py)."""
    from moto.elbv2.models import FakeHealthStatus

    from spotecs.sandbox import lb_front

    def describe_target_health(self: Any, target_group_arn: str, targets: list[dict[str, Any]]) -> Any:
        found = original(self, target_group_arn, targets)
        tg = self.target_groups[target_group_arn]
        listed = [(k, "draining") for k in lb_front.draining_targets(target_group_arn)]
        listed += [(k, "healthy") for k in lb_front.dead_targets(target_group_arn)]
        for (_, target_id, port), state in listed:
            asked = not targets or any(t["Id"] == target_id and str(t.get("Port", port)) == str(port) for t in targets)
            if asked:
                found = [h for h in found if (h.instance_id, str(h.port)) != (target_id, str(port))]
                found.append(
                    FakeHealthStatus(
                        target_id,
                        str(port),
                        tg.health_check_port,
                        state,
                        *(
                            ("Target.DeregistrationInProgress", "Target deregistration is in progress")
                            if state == "draining"
                            else ()
                        ),
                    )
                )
        return found

    describe_target_health.__wrapped__ = original  # type: ignore[attr-defined]
    return describe_target_health


def elbv2_load_balancer_served(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ELBv2Backend.create_load_balancer: the new load balancer answers HTTP on loopback."""
    from spotecs.sandbox import lb_front

    def create_load_balancer(self: Any, *args: Any, **kwargs: Any) -> Any:
        lb = original(self, *args, **kwargs)
        lb_front.serve(self, lb)
        return lb

    create_load_balancer.__wrapped__ = original  # type: ignore[attr-defined]
    return create_load_balancer


def install(wrap: Callable[[type, str, Callable[[Any], Any]], None]) -> None:
    from moto.elbv2.models import ELBv2Backend
    from moto.fis.models import FISBackend

    wrap(FISBackend, "start_experiment", fis_start_experiment_interrupting)
    wrap(ELBv2Backend, "describe_target_health", elbv2_health_with_draining)
    wrap(ELBv2Backend, "create_load_balancer", elbv2_load_balancer_served)
