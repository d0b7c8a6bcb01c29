"""When an Application Auto Scaling scheduled action runs next, in its own timezone.

AWS accepts `at(yyyy-mm-ddThh:mm:ss)`, `rate(N unit)` and six-field `cron(min hour day-of-month
month day-of-week year)` expressions (day-of-week 1-7 = SUN-SAT, `?` in one of the two day
fields). AWS does not report the next run; this computes it for the forms people write
(numbers, names, `*`, `?`, ranges, lists, steps). `L`, `W` and `#` give None (shown as
"see the AWS console"), as does `rate`, which counts from the action's creation."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {
    m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)
}
DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
SEARCH_DAYS = 366 * 5


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """The values a cron field allows; None for a form this module does not evaluate."""
    out: set[int] = set()
    for part in text.upper().split(","):
        if re.search(r"[LW#]", part):
            return None
        part_range, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if part_range in ("*", "?"):
            start, end = low, high
        else:
            first, _, last = part_range.partition("-")
            start = _value(first, names)
            end = _value(last, names) if last else (high if step_text else start)
        if step < 1 or not (low <= start <= high and low <= end <= high):
            return None
        out.update(range(start, end + 1, step))
    return out


def _value(token: str, names: dict[str, int] | None) -> int:
    if names and token in names:
        return names[token]
    return int(token)


def next_run(schedule: str, timezone: str, now: datetime) -> datetime | None:
    """The next time the action runs after `now` (aware), in `timezone`; None when unknown."""
    try:
        tz = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return None
    local_now = now.astimezone(tz)
    if m := re.fullmatch(r"at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)", schedule.strip()):
        at = datetime.fromisoformat(m.group(1)).replace(tzinfo=tz)
        return at if at > local_now else None
    m = re.fullmatch(r"cron\((.+)\)", schedule.strip())
    if not m:
        return None
    parts = m.group(1).split()
    if len(parts) != 6:
        return None
    try:
        minutes = _field(parts[0], 0, 59)
        hours = _field(parts[1], 0, 23)
        doms = _field(parts[2], 1, 31)
        months = _field(parts[3], 1, 12, MONTHS)
        dows = _field(parts[4], 1, 7, DAYS)
        years = _field(parts[5], 1970, 2199)
    except ValueError:
        return None
    if None in (minutes, hours, doms, months, dows, years):
        return None
    assert minutes and hours and doms is not None and months and dows is not None and years
    dom_any, dow_any = parts[2] in ("*", "?"), parts[4] in ("*", "?")
    day = local_now.date()
    for _ in range(SEARCH_DAYS):
        if _day_matches(day, doms, months, dows, years, dom_any, dow_any):
            for hour in sorted(hours):
                for minute in sorted(minutes):
                    at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                    if at > local_now:
                        return at
        day += timedelta(days=1)
    return None


def _day_matches(
    day: date, doms: set[int], months: set[int], dows: set[int], years: set[int], dom_any: bool, dow_any: bool
) -> bool:
    if day.month not in months or day.year not in years:
        return False
    dow = (day.weekday() + 1) % 7 + 1  # Python's Monday=0 to AWS's SUN=1..SAT=7
    if dom_any and dow_any:
        return True
    if dom_any:
        return dow in dows
    if dow_any:
        return day.day in doms
    return day.day in doms and dow in dows
