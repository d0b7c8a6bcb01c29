"""Instance prices for `status`: the spot price now and over the last 7 days
(`DescribeSpotPriceHistory`, one paginated call for every type), and the on-demand price (the
Pricing API's `GetProducts`, served from us-east-1 whatever the stack's region, one call per
type). A price that cannot be read is None with the reason; the rest still shows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from spotecs.errors import AwsError
from spotecs.steps.base import Context

PRICING_REGION = "us-east-1"  # the Pricing API's endpoint for every region's prices
HOURS_PER_MONTH = 730  # AWS's own figure for monthly estimates
HISTORY_DAYS = 7
HISTORY_POINTS = 28  # one per 6 hours: a sparkline a table cell can hold
SPOT_PRODUCT = "Linux/UNIX"
# A local AWS (spotecs's sandbox) marks the prices it makes up with this response header.
SAMPLE_HEADER = "x-spotecs-sample-prices"
SPOT_SOURCE = "EC2 DescribeSpotPriceHistory"
ON_DEMAND_SOURCE = "AWS Pricing API (us-east-1)"
SAMPLE_SOURCE = "sample prices (sandbox)"

# The Pricing API's names for a region (it filters on `regionCode` too, but older catalogues
# and some partitions only carry `location`); regionCode is tried, these are not needed.
_ON_DEMAND_FILTERS = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "licenseModel": "No License required",
}


@dataclass
class SpotSeries:
    now: float
    history: list[float | None]  # HISTORY_POINTS values, oldest first; None before the first row


@dataclass
class TypePrices:
    on_demand: float | None = None
    on_demand_source: str = ON_DEMAND_SOURCE
    on_demand_problem: str | None = None
    spot: dict[str, SpotSeries] = field(default_factory=dict)  # by zone
    spot_source: str = SPOT_SOURCE
    spot_problem: str | None = None


def _sample(response: dict[str, Any]) -> bool:
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return SAMPLE_HEADER in headers


def on_demand(ctx: Context, instance_type: str) -> tuple[float | None, str, str | None]:
    """(USD per hour, source, problem) for a Linux, shared-tenancy instance in the stack's region."""
    client = ctx.aws.client("pricing", region=PRICING_REGION)
    filters = {"instanceType": instance_type, "regionCode": ctx.region, **_ON_DEMAND_FILTERS}
    try:
        got = ctx.call(
            f"read the on-demand price of {instance_type}",
            client.get_products,
            ServiceCode="AmazonEC2",
            Filters=[{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()],
            MaxResults=10,
        )
    except AwsError as e:
        return None, ON_DEMAND_SOURCE, e.detail
    source = SAMPLE_SOURCE if _sample(got) else ON_DEMAND_SOURCE
    for raw in got.get("PriceList", []):
        price = _hourly(raw if isinstance(raw, dict) else json.loads(raw))
        if price is not None:
            return price, source, None
    return None, source, f"no on-demand price for {instance_type} in {ctx.region}"


def _hourly(product: dict[str, Any]) -> float | None:
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dim in term.get("priceDimensions", {}).values():
            usd = dim.get("pricePerUnit", {}).get("USD")
            if dim.get("unit") in ("Hrs", "Hours") and usd not in (None, ""):
                value = float(usd)
                if value > 0:
                    return value
    return None


def spot_history(
    ctx: Context, types: list[str], now: datetime
) -> tuple[dict[str, dict[str, SpotSeries]], str, str | None]:
    """Spot prices by type and zone: ({type: {zone: series}}, source, problem)."""
    start = now - timedelta(days=HISTORY_DAYS)
    rows: list[dict[str, Any]] = []
    sample = False
    try:
        client = ctx.client("ec2")
        pages = client.get_paginator("describe_spot_price_history").paginate(
            InstanceTypes=types,
            ProductDescriptions=[SPOT_PRODUCT],
            StartTime=start,
            EndTime=now,
            PaginationConfig={"PageSize": 1000},
        )
        for page in ctx.call("read spot price history", lambda: list(pages)):
            sample = sample or _sample(page)
            rows.extend(page.get("SpotPriceHistory", []))
    except AwsError as e:
        return {}, SPOT_SOURCE, e.detail
    by_key: dict[tuple[str, str], list[tuple[datetime, float]]] = {}
    for r in rows:
        key = (r["InstanceType"], r["AvailabilityZone"])
        by_key.setdefault(key, []).append((r["Timestamp"], float(r["SpotPrice"])))
    out: dict[str, dict[str, SpotSeries]] = {}
    for (itype, zone), points in by_key.items():
        points.sort()
        out.setdefault(itype, {})[zone] = SpotSeries(points[-1][1], _resample(points, start, now))
    return out, SAMPLE_SOURCE if sample else SPOT_SOURCE, None


def _resample(points: list[tuple[datetime, float]], start: datetime, end: datetime) -> list[float | None]:
    """The price in force at each of HISTORY_POINTS instants (a step function, as AWS's is)."""
    step = (end - start) / HISTORY_POINTS
    out: list[float | None] = []
    i, current = 0, None
    for n in range(HISTORY_POINTS):
        at = start + step * (n + 1)
        while i < len(points) and points[i][0] <= at:
            current = points[i][1]
            i += 1
        out.append(current)
    return out


def read(ctx: Context, types: list[str], now: datetime, pool: Any) -> dict[str, TypePrices]:
    """Every price the fleet needs: the spot history on `pool` (a ThreadPoolExecutor) while the
    on-demand prices are read here, one type after the other (a handful of calls, in the
    order of the stack file)."""
    spot = pool.submit(spot_history, ctx, types, now)
    od = {t: on_demand(ctx, t) for t in types}
    series, spot_source, spot_problem = spot.result()
    out: dict[str, TypePrices] = {}
    for t in types:
        price, source, problem = od[t]
        out[t] = TypePrices(
            on_demand=price,
            on_demand_source=source,
            on_demand_problem=problem,
            spot=series.get(t, {}),
            spot_source=spot_source,
            spot_problem=spot_problem or (None if t in series else f"no spot price for {t}"),
        )
    return out


def hourly(prices: dict[str, TypePrices], instance_type: str, zone: str, spot: bool) -> tuple[float | None, str]:
    """An instance's price per hour now, and where it came from."""
    p = prices.get(instance_type)
    if p is None:
        return None, "unknown"
    if spot:
        series = p.spot.get(zone)
        return (series.now if series else None), p.spot_source
    return p.on_demand, p.on_demand_source
