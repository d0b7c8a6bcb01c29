"""Access to moto's in-process backends (the server runs in this same process)."""

from __future__ import annotations

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
