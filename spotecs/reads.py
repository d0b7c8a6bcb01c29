"""The run's read layer (DESIGN.md, "The flow of one run"): while a plan reads AWS, each distinct
read (service, operation, parameters) goes to AWS once and every step asking it shares the
answer; a write forgets the answers of its service. `aws.Aws` holds one and routes `read` and
`read_pages` through it."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Key = tuple[str, str, str]


class Reads:
    """Thread-safe. Off unless `sharing()`: outside a plan, a wait must poll AWS afresh."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[Key, Any] | None = None
        self._pending: dict[Key, threading.Lock] = {}

    @contextmanager
    def sharing(self) -> Iterator[None]:
        with self._lock:
            self._answers, self._pending = {}, {}
        try:
            yield
        finally:
            with self._lock:
                self._answers, self._pending = None, {}

    @property
    def active(self) -> bool:
        return self._answers is not None

    def shared(self, service: str, operation: str, params: dict[str, Any], fetch: Callable[[], Any]) -> Any:
        """`fetch()`'s answer, made once while sharing; a copy for each caller, so one that edits
        its answer does not edit another's."""
        key = (service, operation, json.dumps(params, sort_keys=True, default=str))
        with self._lock:
            pending = None if self._answers is None else self._pending.setdefault(key, threading.Lock())
        if pending is None:
            return fetch()
        # Only callers of this very read wait for it; other reads go on at the same time.
        with pending:
            with self._lock:
                known = self._answers is not None and key in self._answers
                value = self._answers[key] if self._answers is not None and known else None
            if not known:
                value = fetch()
                with self._lock:
                    if self._answers is not None:
                        self._answers[key] = value
        return copy.deepcopy(value)

    def forget(self, service: str) -> None:
        """A write to `service` may change what its reads answered."""
        with self._lock:
            if self._answers:
                self._answers = {k: v for k, v in self._answers.items() if k[0] != service}
