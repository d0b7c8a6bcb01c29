"""The load balancer's listeners and their rules, one step since neither exists without the
other: HTTP:80 forwarding; or, with a certificate, HTTPS:443 (TLS 1.2+ policy) and HTTP:80
answering 301 to HTTPS. The first web service is the default action; the others (and the first
one too, if it names paths or hosts) get a rule by path and/or host."""

from __future__ import annotations

from typing import Any

from spotecs import names
from spotecs.aws import tag_list
from spotecs.engine.model import Change, Whole
from spotecs.errors import AwsError
from spotecs.steps.base import Context, Step, stack_tagged
from spotecs.steps.load_balancer import elb_tags, elb_tags_of, find_load_balancer
from spotecs.steps.tagging import desired_tags, held_tags, retag_elb

PORTS = {"http": 80, "https": 443}
REDIRECT = {"type": "redirect", "protocol": "HTTPS", "port": "443", "status": "HTTP_301"}
# How `tags` reads a key the listeners and rules do not all hold alike: never a value the file
# gives, so the plan shows the change that makes them agree.
DIFFERS = "(differs between the listeners and rules)"


class Listeners(Step):
    kind = "listeners"
    # Deleting a load balancer deletes its listeners: a new one needs them created again.
    binds_to = frozenset({"load-balancer"})

    def __init__(self, stack: str, services: list[str], https: bool) -> None:
        super().__init__(
            "listeners",
            f"{stack} {':443 + :80' if https else ':80'}",
            ("load-balancer", *(f"target-group:{s}" for s in services)),
        )

    def desired(self, ctx: Context) -> dict[str, Any]:
        cfg = ctx.stack.load_balancer
        web = ctx.stack.web_services()
        forward = {"type": "forward", "target_group": ctx.output(f"target-group:{web[0]}", "arn")}
        rules = sorted(
            (
                {
                    "priority": prio,
                    "paths": sorted(ctx.stack.services[s].routing.paths),
                    "hosts": sorted(ctx.stack.services[s].routing.hosts),
                    "target_group": ctx.output(f"target-group:{s}", "arn"),
                }
                for s, prio in ctx.stack.rule_priorities().items()
            ),
            key=lambda r: r["priority"],
        )
        routed = {"certificate": None, "ssl_policy": None, "default": forward, "rules": rules}
        # One set of tags for every listener and rule: they are the stack's like the rest.
        tags = desired_tags(ctx)
        if not cfg.certificate_arn:
            return {"http": routed, "https": None, "tags": tags}
        https = {**routed, "certificate": cfg.certificate_arn, "ssl_policy": cfg.ssl_policy}
        http = {**routed, "default": dict(REDIRECT), "rules": []} if cfg.redirect_http else routed
        return {"http": http, "https": https, "tags": tags}

    def first_read(self, ctx: Context) -> None:
        """The reads that start the plan's longest chain (engine.plan.read_all): the load
        balancer's ARN, and the stack's tagging-API read naming its listeners (`read`)."""
        ctx.at_once(lambda: find_load_balancer(ctx, names.load_balancer(ctx.name)), lambda: _indexed(ctx))

    def read(self, ctx: Context) -> dict[str, Any] | None:
        lb_name = names.load_balancer(ctx.name)
        lb, indexed = ctx.at_once(lambda: find_load_balancer(ctx, lb_name), lambda: _indexed(ctx))
        if lb is None:
            return None
        lb_arn = lb["LoadBalancerArn"]
        # The listeners, and at once the rules of each listener the tagging API's index names
        # under this load balancer: two round trips instead of three (listeners, then rules).
        # That index is eventually consistent, so it only says where to look: the listeners are
        # DescribeListeners' and each one's rules are asked by its ARN; a listener the index
        # lacks has its rules asked after, one it still names once deleted answers nothing.
        under = lb_arn.replace(":loadbalancer/", ":listener/", 1) + "/"
        ahead = sorted(arn for arn in indexed if arn.startswith(under))
        listeners, *early = ctx.at_once(
            lambda: ctx.paginate(
                f"list listeners of load balancer {lb_name}",
                "elbv2",
                "describe_listeners",
                "Listeners",
                LoadBalancerArn=lb_arn,
            ),
            *(lambda arn=arn: _rules(ctx, arn) for arn in ahead),
        )
        by_port = {listener["Port"]: listener for listener in listeners}
        ours = [(role, port) for role, port in PORTS.items() if port in by_port]
        known = {arn: rules for arn, rules in zip(ahead, early, strict=True) if rules is not None}
        late = [port for _, port in ours if by_port[port]["ListenerArn"] not in known]
        # Each listener's rules the index did not name, at once: one round trip more, not one each.
        asked = ctx.at_once(*(lambda p=p: _rules(ctx, by_port[p]["ListenerArn"]) for p in late))
        for port, rules in zip(late, asked, strict=True):
            known[by_port[port]["ListenerArn"]] = rules or []
        rules_of = {port: known[by_port[port]["ListenerArn"]] for _, port in ours}
        out: dict[str, Any] = {"listener_arns": {}, "rule_arns": {}}
        for role, port in PORTS.items():
            listener = by_port.get(port)
            if listener is None:
                out[role] = None
                continue
            rules = rules_of[port]
            certs = listener.get("Certificates") or [{}]
            out[role] = {
                "certificate": certs[0].get("CertificateArn"),
                # AWS echoes a TLS policy even on plain HTTP listeners; it means nothing there.
                "ssl_policy": listener.get("SslPolicy") if listener.get("Protocol") == "HTTPS" else None,
                "default": _action_of(listener.get("DefaultActions", [])),
                "rules": sorted((_rule_of(r) for r in rules if not r.get("IsDefault")), key=lambda r: r["priority"]),
            }
            out["listener_arns"][role] = listener["ListenerArn"]
            out["rule_arns"][role] = {
                str(_rule_of(r)["priority"]): r["RuleArn"] for r in rules if not r.get("IsDefault")
            }
        if not out["listener_arns"]:
            return None
        arns = [*out["listener_arns"].values(), *(a for by_prio in out["rule_arns"].values() for a in by_prio.values())]
        found = elb_tags_of(ctx, arns, f"the listeners of load balancer {lb_name}")
        out["held_tags"] = {arn: held_tags(found.get(arn, {})) for arn in arns}
        out["tags"] = _agreed(list(out["held_tags"].values()))
        out["_owned"] = ctx.owned(elb_tags(ctx, lb_arn, f"load balancer {lb_name}"))
        out["load_balancer_arn"] = lb_arn
        return out

    def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        empty: dict[str, Any] = {"http": None, "https": None, "listener_arns": {}, "rule_arns": {}, "held_tags": {}}
        return self._converge(ctx, desired, empty, ctx.output("load-balancer", "arn"))

    def update(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], change: Change) -> dict[str, Any]:
        return self._converge(ctx, desired, current, current["load_balancer_arn"])

    def _converge(self, ctx: Context, desired: dict[str, Any], current: dict[str, Any], lb_arn: str) -> dict[str, Any]:
        elbv2 = ctx.client("elbv2")
        listener_arns = dict(current["listener_arns"])
        # What stays of the listeners and rules AWS holds, whose tags are brought to the file's last.
        kept = dict(current.get("held_tags") or {})
        for role, port in PORTS.items():
            want, have, arn = desired[role], current.get(role), listener_arns.get(role)
            if want is None:
                if arn:
                    ctx.call(
                        f"delete listener :{port}",
                        elbv2.delete_listener,
                        missing=("ListenerNotFound",),
                        ListenerArn=arn,
                    )
                    del listener_arns[role]
                    for gone in (arn, *current["rule_arns"].get(role, {}).values()):  # its rules go with it
                        kept.pop(gone, None)
                continue
            settings = _listener_request(role, want)
            if arn is None or have is None:
                arn = ctx.call(
                    f"create listener :{port}",
                    elbv2.create_listener,
                    LoadBalancerArn=lb_arn,
                    Port=port,
                    Tags=tag_list(desired["tags"]),
                    **settings,
                )["Listeners"][0]["ListenerArn"]
                listener_arns[role] = arn
                self._rules(ctx, port, arn, want["rules"], [], {}, desired["tags"])
                continue
            if any(want[k] != have.get(k) for k in ("certificate", "ssl_policy", "default")):
                ctx.call(f"update listener :{port}", elbv2.modify_listener, ListenerArn=arn, Port=port, **settings)
            arns = current["rule_arns"].get(role, {})
            deleted = self._rules(ctx, port, arn, want["rules"], have["rules"], arns, desired["tags"])
            for gone in deleted:
                kept.pop(gone, None)
        retag_elb(ctx, f"the listeners and rules of {self.name}", desired["tags"], kept)
        return {"listener_arns": listener_arns, "load_balancer_arn": lb_arn}

    def _rules(
        self,
        ctx: Context,
        port: int,
        listener_arn: str,
        want: list[dict[str, Any]],
        have: list[dict[str, Any]],
        arns: dict[str, str],
        tags: dict[str, str],
    ) -> list[str]:
        """Rules are matched by priority: a priority's content is modified in place. Returns the
        ARNs of the rules deleted."""
        elbv2 = ctx.client("elbv2")
        wanted = {str(r["priority"]): r for r in want}
        existing = {str(r["priority"]): r for r in have}
        deleted = []
        for prio in sorted(set(existing) - set(wanted), key=int):
            ctx.call(
                f"delete rule {prio} of listener :{port}",
                elbv2.delete_rule,
                missing=("RuleNotFound",),
                RuleArn=arns[prio],
            )
            deleted.append(arns[prio])
        for prio, rule in sorted(wanted.items(), key=lambda kv: int(kv[0])):
            body: dict[str, Any] = {
                "Conditions": _conditions(rule),
                "Actions": [_action_request({"type": "forward", "target_group": rule["target_group"]})],
            }
            if prio not in existing:
                ctx.call(
                    f"create rule {prio} of listener :{port}",
                    elbv2.create_rule,
                    ListenerArn=listener_arn,
                    Priority=int(prio),
                    Tags=tag_list(tags),
                    **body,
                )
            elif existing[prio] != rule:
                ctx.call(f"update rule {prio} of listener :{port}", elbv2.modify_rule, RuleArn=arns[prio], **body)
        return deleted

    def delete(self, ctx: Context, current: dict[str, Any]) -> None:
        # Deleting a listener deletes its rules.
        for role, arn in sorted(current.get("listener_arns", {}).items()):
            ctx.call(
                f"delete listener :{PORTS[role]}",
                ctx.client("elbv2").delete_listener,
                missing=("ListenerNotFound",),
                ListenerArn=arn,
            )


def _indexed(ctx: Context) -> list[str]:
    """The ARNs of the listeners the stack's tagging-API read names, while a plan shares its reads."""
    return [arn for arn in stack_tagged(ctx) if ":listener/" in arn] if ctx.aws.sharing_reads else []


def _rules(ctx: Context, listener_arn: str) -> list[dict[str, Any]] | None:
    """Every rule of a listener; None when it is gone."""
    try:
        return ctx.paginate(
            f"list rules of listener {listener_arn.rsplit('/', 1)[-1]}",
            "elbv2",
            "describe_rules",
            "Rules",
            ListenerArn=listener_arn,
        )
    except AwsError as e:
        if e.code == "ListenerNotFound":
            return None
        raise


def _agreed(held: list[dict[str, str]]) -> Whole:
    """The tags the listeners and rules hold, when they agree; a key they do not all hold alike
    reads as DIFFERS."""
    keys = sorted({k for tags in held for k in tags})
    return Whole({k: held[0][k] if all(t.get(k) == held[0].get(k) for t in held) else DIFFERS for k in keys})


def _listener_request(role: str, want: dict[str, Any]) -> dict[str, Any]:
    req: dict[str, Any] = {"Protocol": role.upper(), "DefaultActions": [_action_request(want["default"])]}
    if role == "https":
        req["Certificates"] = [{"CertificateArn": want["certificate"]}]
        req["SslPolicy"] = want["ssl_policy"]
    return req


def _action_request(action: dict[str, Any]) -> dict[str, Any]:
    if action["type"] == "redirect":
        return {
            "Type": "redirect",
            "RedirectConfig": {
                "Protocol": action["protocol"],
                "Port": action["port"],
                "Host": "#{host}",
                "Path": "/#{path}",
                "Query": "#{query}",
                "StatusCode": action["status"],
            },
        }
    return {"Type": "forward", "TargetGroupArn": action["target_group"]}


def _action_of(actions: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not actions:
        return None
    a = sorted(actions, key=lambda x: x.get("Order", 0))[0]
    if a["Type"] == "redirect":
        rc = a.get("RedirectConfig", {})
        return {
            "type": "redirect",
            "protocol": rc.get("Protocol"),
            "port": rc.get("Port"),
            "status": rc.get("StatusCode"),
        }
    if a["Type"] == "forward":
        # AWS answers with TargetGroupArn, ForwardConfig (weighted groups), or both.
        groups = a.get("ForwardConfig", {}).get("TargetGroups", [])
        arn = a.get("TargetGroupArn") or (groups[0]["TargetGroupArn"] if len(groups) == 1 else groups)
        return {"type": "forward", "target_group": arn}
    return {"type": a["Type"]}


def _conditions(rule: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    if rule["paths"]:
        out.append({"Field": "path-pattern", "PathPatternConfig": {"Values": rule["paths"]}})
    if rule["hosts"]:
        out.append({"Field": "host-header", "HostHeaderConfig": {"Values": rule["hosts"]}})
    return out


def _rule_of(rule: dict[str, Any]) -> dict[str, Any]:
    paths: list[str] = []
    hosts: list[str] = []
    for c in rule.get("Conditions", []):
        if c.get("Field") == "path-pattern":
            paths += c.get("PathPatternConfig", {}).get("Values") or c.get("Values", [])
        elif c.get("Field") == "host-header":
            hosts += c.get("HostHeaderConfig", {}).get("Values") or c.get("Values", [])
    action = _action_of(rule.get("Actions", [])) or {}
    return {
        "priority": int(rule["Priority"]),
        "paths": sorted(paths),
        "hosts": sorted(hosts),
        "target_group": action.get("target_group"),
    }
