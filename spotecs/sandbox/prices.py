"""Sample prices for the sandbox: moto has no Pricing API and answers DescribeSpotPriceHistory
with one constant row per type and zone (0.00001). The sandbox serves instead:

- on-demand: a small table for the instance types the examples use (Linux, shared tenancy,
  close to us-east-1's list prices when written; the same in every region);
- spot: a price per type, zone and time, between 1/3.4 and 1/2.3 of on-demand (the article's
  measured savings were 2.3x to 3.4x), changing every few hours as AWS's does.

Every answer carries the SAMPLE_HEADER response header, so `status` labels these numbers as
sample prices, never as AWS's. Follows the shapes of
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html
and https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSpotPriceHistory.html."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from spotecs.prices import SAMPLE_HEADER

SAMPLE_ON_DEMAND = {  # USD per hour
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
    "t3.large": 0.0832,
    "t3a.small": 0.0188,
    "t3a.medium": 0.0376,
    "m5.large": 0.096,
    "m5a.large": 0.086,
    "m6i.large": 0.096,
    "m6a.large": 0.0864,
    "c5.large": 0.085,
    "c6i.large": 0.085,
}
SAMPLE_NOTE = "sample prices served by the spotecs sandbox, not AWS's"
RATIO_LOW, RATIO_HIGH = 2.3, 3.4
CHANGE_EVERY = timedelta(hours=3)  # spot prices move in steps


def _unit(*parts: str) -> float:
    """A stable number in [0, 1) from the parts (not random: the same every run)."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def spot_price(instance_type: str, zone: str, at: datetime) -> float:
    """The sample spot price in force at `at`: on-demand over a ratio in [2.3, 3.4] that each
    type and zone has its own level of, drifting slowly over days."""
    od = SAMPLE_ON_DEMAND.get(instance_type, 0.1)
    step = int(at.timestamp() // CHANGE_EVERY.total_seconds())
    level = _unit(instance_type, zone)
    wave = 0.5 + 0.35 * math.sin(step / 9 + 6 * level) + 0.15 * (_unit(instance_type, zone, str(step)) - 0.5)
    mix = min(max(0.5 * level + 0.5 * wave, 0.0), 1.0)
    ratio = RATIO_LOW + (RATIO_HIGH - RATIO_LOW) * mix
    return round(od / ratio, 6)


def spot_history(types: Iterable[str], zones: Iterable[str], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Rows as DescribeSpotPriceHistory returns them: each change in [start, end], plus the
    price in force at `start`, newest first."""
    rows = []
    first = datetime.fromtimestamp(
        (start.timestamp() // CHANGE_EVERY.total_seconds()) * CHANGE_EVERY.total_seconds(), UTC
    )
    for t in types:
        for z in zones:
            at = first
            while at <= end:
                rows.append(
                    {
                        "InstanceType": t,
                        "ProductDescription": "Linux/UNIX",
                        "SpotPrice": f"{spot_price(t, z, at):.6f}",
                        "AvailabilityZone": z,
                        "Timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    }
                )
                at += CHANGE_EVERY
    rows.sort(key=lambda r: r["Timestamp"], reverse=True)
    return rows


def _product(instance_type: str, region: str, price: float) -> str:
    sku = hashlib.sha1(f"{instance_type}/{region}".encode()).hexdigest()[:16].upper()
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "sku": sku,
                "attributes": {
                    "instanceType": instance_type,
                    "regionCode": region,
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "note": SAMPLE_NOTE,
                },
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "pricePerUnit": {"USD": f"{price:.10f}"},
                                "description": f"${price} per On Demand Linux {instance_type} Instance Hour",
                            }
                        }
                    }
                }
            },
        }
    )


def get_products(request: dict[str, Any]) -> dict[str, Any]:
    filters = {f.get("Field"): f.get("Value") for f in request.get("Filters", [])}
    itype = filters.get("instanceType")
    price = SAMPLE_ON_DEMAND.get(str(itype))
    region = str(filters.get("regionCode") or "us-east-1")
    return {"FormatVersion": "aws_v1", "PriceList": [_product(str(itype), region, price)] if price else []}


class PricingApi:
    """WSGI middleware: answers the Pricing API (JSON 1.1, target AWSPriceListService.*) in
    front of moto's server, which has none; every other request goes on to moto."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target.startswith("AWSPriceListService."):
            return self.app(environ, start_response)
        size = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(size) or b"{}")
        operation = target.split(".", 1)[1]
        if operation == "GetProducts":
            status, body = "200 OK", get_products(request)
        else:
            status = "400 Bad Request"
            body = {"__type": "InvalidParameterException", "message": "the sandbox serves GetProducts only"}
        data = json.dumps(body).encode()
        start_response(
            status,
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(data))),
                (SAMPLE_HEADER, SAMPLE_NOTE),
            ],
        )
        return [data]


def now() -> datetime:
    return datetime.now(UTC)
