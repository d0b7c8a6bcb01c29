"""spotecs/reads.py and its use through Aws: while a plan shares its reads, each distinct read is
made once whoever asks (and at the same moment from several threads, still once), a write
forgets its service's answers, answers are copies, and outside `reading()` every read is made."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from spotecs.aws import Aws, AwsOptions
from spotecs.reads import Reads
from tests.helpers import REGION


def test_the_same_read_asked_at_once_by_several_threads_is_made_once() -> None:
    reads, made = Reads(), []
    release = threading.Event()

    def fetch() -> dict[str, Any]:
        made.append(1)
        release.wait(5)  # the others ask while this one is in flight
        return {"answer": [1]}

    with reads.sharing(), ThreadPoolExecutor(4) as pool:
        asked = [pool.submit(reads.shared, "ecs", "DescribeClusters", {"clusters": ["a"]}, fetch) for _ in range(4)]
        # Another read is not held up by the one in flight.
        assert reads.shared("ecs", "DescribeClusters", {"clusters": ["b"]}, lambda: "b") == "b"
        release.set()
        answers = [f.result() for f in asked]
    assert made == [1]
    assert answers == [{"answer": [1]}] * 4
    answers[0]["answer"].append(2)  # each caller has its own copy
    assert answers[1] == {"answer": [1]}


def test_reads_are_made_each_time_outside_a_plan_and_forgotten_on_a_write() -> None:
    reads, made = Reads(), []

    def fetch() -> int:
        made.append(1)
        return len(made)

    assert [reads.shared("logs", "X", {}, fetch) for _ in range(2)] == [1, 2]
    with reads.sharing():
        assert reads.active
        assert [reads.shared("logs", "X", {}, fetch) for _ in range(2)] == [3, 3]
        reads.forget("ec2")
        assert reads.shared("logs", "X", {}, fetch) == 3
        reads.forget("logs")
        assert reads.shared("logs", "X", {}, fetch) == 4
    assert not reads.active


def test_aws_records_only_the_calls_made_and_a_write_forgets(moto: None) -> None:
    aws = Aws(AwsOptions(region=REGION))
    with aws.reading():
        for _ in range(3):
            aws.read_pages("list log groups", "logs", "describe_log_groups", "logGroups", logGroupNamePrefix="/x")
        aws.client("logs").create_log_group(logGroupName="/x/a")
        groups = aws.read_pages("list log groups", "logs", "describe_log_groups", "logGroups", logGroupNamePrefix="/x")
    assert [g["logGroupName"] for g in groups] == ["/x/a"]
    assert [c.operation for c in aws.calls] == ["DescribeLogGroups", "CreateLogGroup", "DescribeLogGroups"]
