"""Target-group registration for service tasks.

moto 5.2's ``FakeTargetGroup.targets`` is keyed by target Id only, so two tasks on one
instance (same Id, different dynamic ports) would overwrite each other. ECS needs one target
per (instance, port); we make the target groups we touch port-aware by replacing their
``register``/``deregister``/``health_for`` methods on that one object (not the class, so
other moto users in the process are unaffected).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MethodType, SimpleNamespace
from typing import Any

_PATCHED = "_spotecs_port_aware"


def _key(target_id: str, port: Any) -> str:
    return f"{target_id}:{port}"


def _matching_keys(tg: Any, target: dict[str, Any]) -> list[str]:
    port = target.get("Port")
    return [
        key
        for key, t in tg.targets.items()
        if t["Id"] == target["Id"] and (port is None or str(t["Port"]) == str(port))
    ]


def _register(self: Any, targets: list[dict[str, Any]]) -> None:
    for target in targets:
        # Reuse moto's own validation (e.g. TargetNotRunning), then re-key by Id and port.
        type(self).register(self, [target])
        entry = self.targets.pop(target["Id"])
        self.targets[_key(entry["Id"], entry["Port"])] = entry


def _deregister(self: Any, targets: list[dict[str, Any]]) -> None:
    from moto.elbv2.exceptions import InvalidTargetError

    for target in targets:
        keys = _matching_keys(self, target)
        if not keys:
            raise InvalidTargetError()
        for key in keys:
            self.deregistered_targets[target["Id"]] = self.targets.pop(key)


def _deregister_terminated(self: Any, instance_ids: list[str]) -> None:
    for key, t in list(self.targets.items()):
        if t["Id"] in instance_ids:
            self.terminated_targets[t["Id"]] = self.targets.pop(key)


def _health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
    keys = _matching_keys(self, target)
    found = self.targets[keys[0]] if keys else None
    # moto's health logic only reads these attributes; give it a view keyed the old way.
    view = SimpleNamespace(
        targets={found["Id"]: found} if found else {},
        deregistered_targets=self.deregistered_targets,
        terminated_targets=self.terminated_targets,
        port=self.port,
        health_check_port=self.health_check_port,
    )
    return type(self).health_for(view, found or target, ec2_backend)


def make_port_aware(tg: Any) -> None:
    """Let ``tg`` hold several targets with the same Id on different ports."""
    if getattr(tg, _PATCHED, False):
        return
    existing = list(tg.targets.values())
    tg.targets.clear()
    for t in existing:
        tg.targets[_key(t["Id"], t["Port"])] = t
    tg.register = MethodType(_register, tg)
    tg.deregister = MethodType(_deregister, tg)
    tg.deregister_terminated_instances = MethodType(_deregister_terminated, tg)
    tg.health_for = MethodType(_health_for, tg)
    setattr(tg, _PATCHED, True)


def register(elbv2: Any, tg_arn: str, targets: Iterable[tuple[str, int]]) -> None:
    tg = elbv2.target_groups.get(tg_arn)
    if tg is None:
        return  # the service points at a target group that does not exist (any more)
    make_port_aware(tg)
    tg.register([{"Id": target_id, "Port": port} for target_id, port in targets])


def deregister(elbv2: Any, tg_arn: str, targets: Iterable[tuple[str, int]]) -> None:
    tg = elbv2.target_groups.get(tg_arn)
    if tg is None:
        return
    make_port_aware(tg)
    for target_id, port in targets:
        if _matching_keys(tg, {"Id": target_id, "Port": port}):
            tg.deregister([{"Id": target_id, "Port": port}])
