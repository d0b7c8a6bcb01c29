"""What AWS accepts in the stack file's free-form values, checked before any call: schedule
expressions, time zones, container image references, load balancer rule conditions, tags,
environment variable names (and those that say they hold a secret) and TLS policy names
(and those older than TLS 1.2). Each function returns the problems it finds
(empty when the value is fine), worded for the user."""

from __future__ import annotations

import json
import re
import unicodedata
import zoneinfo
from collections.abc import Iterable
from functools import cache

# --------------------------------------------------------------------------- schedules
# Application Auto Scaling's schedule expressions ("Scheduled scaling for Application Auto
# Scaling", and EventBridge's cron reference it points to): at(...), rate(value unit) and
# cron(minutes hours day-of-month month day-of-week year).

CRON_FIELDS = (
    ("minutes", 0, 59),
    ("hours", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 1, 7),
    ("year", 1970, 2199),
)
_MONTHS = {
    m: i for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\)$")


def schedule_problems(expr: str) -> list[str]:
    if expr.startswith("rate("):
        m = _RATE.match(expr)
        if not m:
            return [f"'{expr}' is not a rate: use rate(N minutes|hours|days), e.g. rate(5 minutes)"]
        if int(m.group(1)) < 1:
            return [f"'{expr}': the rate must be at least 1"]
        return []
    if expr.startswith("at("):
        m = _AT.match(expr)
        if not m:
            return [f"'{expr}' is not a date: use at(yyyy-mm-ddThh:mm:ss)"]
        _, month, day, hour, minute, second = (int(g) for g in m.groups())
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 59):
            return [f"'{expr}' is not a valid date and time"]
        return []
    if expr.startswith("cron(") and expr.endswith(")"):
        return [f"'{expr}': {p}" for p in _cron_problems(expr[5:-1].split())]
    return [f"'{expr}' is not a schedule: use cron(...), rate(...) or at(yyyy-mm-ddThh:mm:ss)"]


def _cron_problems(fields: list[str]) -> list[str]:
    names = " ".join(name for name, _, _ in CRON_FIELDS)
    if len(fields) != len(CRON_FIELDS):
        return [f"a cron expression has {len(CRON_FIELDS)} fields ({names}), not {len(fields)}"]
    problems = [
        p for (name, lo, hi), value in zip(CRON_FIELDS, fields, strict=True) for p in _field(name, lo, hi, value)
    ]
    dom, dow = fields[2], fields[4]
    if not problems and (dom == "?") == (dow == "?"):
        problems.append("exactly one of day-of-month and day-of-week must be '?'")
    return problems


def _field(name: str, lo: int, hi: int, text: str) -> list[str]:
    if text == "?":
        return [] if name in ("day-of-month", "day-of-week") else [f"{name}: '?' is only for the day fields"]
    if name == "day-of-month" and re.fullmatch(r"L|LW|\d{1,2}W", text):
        return [] if text in ("L", "LW") or 1 <= int(text[:-1]) <= 31 else [f"{name}: {text} is out of range"]
    if name == "day-of-week" and re.fullmatch(r"\w{1,3}(#[1-5]|L)", text):
        return _values(name, lo, hi, re.split(r"[#L]", text)[0])
    problems: list[str] = []
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) >= 1):
            problems.append(f"{name}: '{part}' has an invalid step")
        if base == "*":
            continue
        problems += _values(name, lo, hi, *base.split("-", 1))
    return problems


def _values(name: str, lo: int, hi: int, *values: str) -> list[str]:
    problems = []
    for v in values:
        names = _MONTHS if name == "month" else _DAYS if name == "day-of-week" else {}
        n = names.get(v.upper()) if not v.isdigit() else int(v)
        if n is None:
            problems.append(f"{name}: '{v}' is not a value")
        elif not lo <= n <= hi:
            problems.append(f"{name}: {n} is out of range {lo}-{hi}")
    return problems


@cache
def known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_problems(name: str) -> list[str]:
    if name in known_timezones() or name == "UTC":
        return []
    return [f"'{name}' is not an IANA time zone (e.g. UTC, Europe/Dublin, America/New_York)"]


# --------------------------------------------------------------------------- images
# The Docker reference grammar (distribution/reference, regexp.go): [domain[:port]/]path[:tag][@digest].

_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::\d+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


def image_problems(ref: str) -> list[str]:
    if len(ref) > 255:
        return [f"'{ref[:40]}...' is longer than the 255 characters ECS accepts for an image"]
    if _IMAGE.match(ref):
        return []
    first, _, rest = ref.partition("/")
    domain = f"{first}/" if rest and ("." in first or ":" in first or first == "localhost") else ""
    repo, sep, suffix = ref.removeprefix(domain).partition(":")
    if repo != repo.lower() and _IMAGE.match(f"{domain}{repo.lower()}{sep}{suffix}"):
        return [f"'{ref}': a repository name must be lower case"]
    return [f"'{ref}' is not an image reference (e.g. nginx:1.27, ghcr.io/org/app:1.0, repo@sha256:...)"]


# --------------------------------------------------------------------------- load balancer rules
# "Listener rules for your Application Load Balancer", condition types: host-header and path-pattern.

CONDITION_VALUE_MAX = 128


def host_problems(host: str) -> list[str]:
    if len(host) > CONDITION_VALUE_MAX:
        return [f"'{host[:40]}...' is longer than {CONDITION_VALUE_MAX} characters"]
    if not re.fullmatch(r"[A-Za-z0-9.*?-]+", host):
        return [f"'{host}' is not a host name pattern (letters, digits, - . and the wildcards * ?)"]
    if "." not in host or not re.search(r"\.[A-Za-z*?]+$", host):
        return [f"'{host}' is not a host name pattern: it needs a '.' and only letters after the last one"]
    return []


def path_problems(path: str) -> list[str]:
    if len(path) > CONDITION_VALUE_MAX:
        return [f"'{path[:40]}...' is longer than {CONDITION_VALUE_MAX} characters"]
    if not re.fullmatch(r"[A-Za-z0-9_\-.$/~\"'@:+&*?]+", path):
        return [f"'{path}' is not a path pattern (letters, digits, _ - . $ / ~ \" ' @ : + & and the wildcards * ?)"]
    return []


# --------------------------------------------------------------------------- tags
# "Tagging your AWS resources" (https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html):
# at most 50 tags per resource, values up to 256 characters, `aws:` reserved; the services'
# own patterns admit letters, digits, separators (\p{L}\p{Z}\p{N}) and _ . : / = + - @ only, so
# no tab or line break. Keys up to 127 characters: EC2's limit, below the others' 128
# (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Tag.html), and the stack's
# groups, templates and instances are EC2's. IAM takes a role's keys without their case
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags.html#case-sensitivity): two keys
# differing in case only, or one spelling spotecs:stack in other letters, fail its TagRole.
# spotecs adds its own (spotecs:stack, spotecs:managed, Name), and ECS adds AmazonECSManaged
# to the auto scaling group of a capacity provider with managed scaling (as spotecs's are).

MAX_TAGS = 50
SPOTECS_TAGS = ("spotecs:stack", "spotecs:managed", "Name")
SERVICE_TAGS = ("AmazonECSManaged",)
TAG_KEY_MAX, TAG_VALUE_MAX = 127, 256
_TAG_PUNCTUATION = "_.:/=+-@"


def _tag_refused(text: str) -> str | None:
    """The first character AWS refuses in a tag key or value, or None."""
    return next((c for c in text if c not in _TAG_PUNCTUATION and unicodedata.category(c)[0] not in "LNZ"), None)


def _shown(text: str) -> str:
    """A key in a one-line message: cut, with a tab or a line break written as an escape."""
    return json.dumps(text[:40], ensure_ascii=False)[1:-1]


def tag_problems(tags: dict[str, str]) -> list[str]:
    problems = []
    theirs = (*SPOTECS_TAGS, *SERVICE_TAGS)
    room = MAX_TAGS - len(theirs)
    if len(tags) > room:
        problems.append(
            f"{len(tags)} tags, but AWS allows {MAX_TAGS} per resource and spotecs and ECS add {len(theirs)} "
            f"of their own ({', '.join(theirs)}): at most {room}"
        )
    seen: dict[str, str] = {}
    for key, value in tags.items():
        shown = _shown(key)
        if key.lower().startswith("aws:"):
            problems.append(f"'{shown}': tag keys starting with aws: are reserved by AWS")
        elif key.lower().startswith("spotecs:") or key == "Name":
            problems.append(f"'{shown}': reserved for the tags spotecs sets itself (spotecs:*, Name)")
        elif key in SERVICE_TAGS:
            problems.append(f"'{shown}': reserved for the tag ECS sets on the auto scaling group itself")
        elif not key or len(key) > TAG_KEY_MAX:
            problems.append(f"'{shown}': a tag key has 1 to {TAG_KEY_MAX} characters")
        elif (bad := _tag_refused(key)) is not None:
            problems.append(
                f"'{shown}': a tag key has letters, digits, spaces and _ . : / = + - @ only, not '{_shown(bad)}'"
            )
        elif key.lower() in seen:
            problems.append(
                f"'{shown}' and '{_shown(seen[key.lower()])}': IAM takes tag keys without their case, keep one of them"
            )
        seen.setdefault(key.lower(), key)
        if len(value) > TAG_VALUE_MAX:
            problems.append(f"'{shown}': a tag value has at most {TAG_VALUE_MAX} characters")
        elif (bad := _tag_refused(value)) is not None:
            problems.append(
                f"'{shown}': a tag value has letters, digits, spaces and _ . : / = + - @ only, not '{_shown(bad)}'"
            )
    return problems


# --------------------------------------------------------------------------- environment

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_name_problems(name: str) -> list[str]:
    if _ENV_NAME.match(name):
        return []
    return [f"'{name}' is not an environment variable name (letters, digits and _, not starting with a digit)"]


# Names that say "secret": PASSWORD, DB_PASS, API_KEY, PRIVATE_KEY, CLIENT_SECRET, AUTH_TOKEN...
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|(^|_)PASS($|_)|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)",
    re.IGNORECASE,
)


def secret_literal_problems(environment: dict[str, str], not_secret: Iterable[str], where: str) -> dict[str, str]:
    """Variable -> problem, for each whose name says "secret" and whose value is a literal,
    unless `not_secret` names it. Never the value itself in the message: it may be the secret."""
    exempt = set(not_secret)
    return {
        var: "looks like a secret, and a literal value would sit in plain text in the task "
        f"definition: store it in Secrets Manager or SSM and name it under {where}.secrets; "
        f"if it is not a secret, say why under {where}.not_secret.{var}"
        for var, value in environment.items()
        if value and SECRET_NAME.search(var) and var not in exempt
    }


# --------------------------------------------------------------------------- TLS policies
# ELB's predefined security policies for HTTPS listeners, from "Security policies for your
# Application Load Balancer" (docs.aws.amazon.com/elasticloadbalancing/latest/application/
# describe-ssl-policies.html, as of 2025-09). ALB has no custom policies: any other name fails.

SSL_POLICIES = frozenset(
    [
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
        "ELBSecurityPolicy-TLS13-1-1-2021-06",
        "ELBSecurityPolicy-TLS13-1-0-2021-06",
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-1-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-0-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-FS-1-2-Res-2020-10",
        "ELBSecurityPolicy-FS-1-2-Res-2019-08",
        "ELBSecurityPolicy-FS-1-2-2019-08",
        "ELBSecurityPolicy-FS-1-1-2019-08",
        "ELBSecurityPolicy-FS-2018-06",
        "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
        "ELBSecurityPolicy-TLS-1-2-2017-01",
        "ELBSecurityPolicy-TLS-1-1-2017-01",
        "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-TLS-1-0-2015-04",
        "ELBSecurityPolicy-2015-05",
    ]
)


# The policies above that accept nothing older than TLS 1.2.
_TLS12_POLICY = re.compile(r"(TLS13-1-[23]|TLS-1-2|FS-1-2)")


def tls_below_1_2(name: str) -> bool:
    return not _TLS12_POLICY.search(name)


def ssl_policy_problems(name: str) -> list[str]:
    if name in SSL_POLICIES:
        return []
    import difflib

    close = difflib.get_close_matches(name, sorted(SSL_POLICIES), n=1, cutoff=0.8)
    hint = f" (did you mean '{close[0]}'?)" if close else " (e.g. ELBSecurityPolicy-TLS13-1-2-2021-06)"
    return [f"'{name}' is not one of Elastic Load Balancing's predefined security policies{hint}"]
