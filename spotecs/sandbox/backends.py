"""Access to moto's in-process backends (the server runs in this same process)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from spotecs.errors import SandboxUnavailable

MOTO_MISSING = "the sandbox needs moto: pip install 'spotecs[sandbox]'"


def require_moto() -> None:
    """Raise a clear error when the optional moto extra is not installed."""
    try:
        import moto
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise SandboxUnavailable(MOTO_MISSING) from exc


def regions_with_state(service: str) -> Iterator[tuple[str, str, Any]]:
    """Yield (account_id, region, backend) for every region that already has state.

    BackendDict/AccountSpecificBackend create backends on ``[]`` access, so we read the
    existing entries with plain ``dict`` methods and never create empty regions.
    """
    from moto.backends import get_backend

    backend_dict = get_backend(service)  # type: ignore[call-overload]
    for account_id, per_account in list(dict.items(backend_dict)):
        for region, backend in list(dict.items(per_account)):
            yield account_id, region, backend


def backend_for(service: str, account_id: str, region: str) -> Any | None:
    """The backend of ``service`` for one account/region, or None if it has no state yet."""
    from moto.backends import get_backend

    per_account = dict.get(get_backend(service), account_id)  # type: ignore[call-overload]
    if per_account is None:
        return None
    return dict.get(per_account, region)


# One request at a time for moto in-process (mock_aws), as server._Serialized does for its server.
IN_PROCESS_REQUESTS = threading.RLock()


def serialize_in_process_requests() -> None:
    """moto's backends are not thread-safe (a GetResources iterating SSM's parameters fails with
    "dictionary changed size during iteration" while a GetParameter adds one), and spotecs makes
    its reads at once, as AWS lets it. In-process, moto answers from a botocore before-send
    handler (BotocoreStubber): this makes it answer one request at a time. Idempotent."""
    from moto.core.botocore_stubber import BotocoreStubber

    answer = BotocoreStubber.__call__
    if getattr(answer, "_spotecs_serialized", False):
        return

    def serialized(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        with IN_PROCESS_REQUESTS:
            return answer(self, event_name, request, **kwargs)

    serialized._spotecs_serialized = True  # type: ignore[attr-defined]
    BotocoreStubber.__call__ = serialized  # type: ignore[method-assign]
