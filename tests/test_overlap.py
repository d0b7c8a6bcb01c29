"""Work that needs none of AWS's answers is done while a plan waits for them, not after its last
answer (issue 15: the no-op plan within start-up plus 4 round trips): rich's first-print cost
(render_plan.warm_up) on the orphan search's thread once that search is done."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import spotecs.up
from tests.helpers import Runs, article, cmd

pytestmark = pytest.mark.usefixtures("moto")


def test_the_renderer_is_warmed_up_off_the_main_thread_before_the_plan_is_printed(
    runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = article(tmp_path)
    assert cmd("up", "-f", str(path), "--yes", "--no-wait").code == 0
    seen: list[tuple[str, bool]] = []
    real_warm_up, real_plan_text = spotecs.up.warm_up, spotecs.up.plan_text

    def warm_up() -> None:
        seen.append(("warm_up", threading.current_thread() is threading.main_thread()))
        real_warm_up()

    def plan_text(*args: Any) -> None:
        seen.append(("plan_text", threading.current_thread() is threading.main_thread()))
        real_plan_text(*args)

    monkeypatch.setattr(spotecs.up, "warm_up", warm_up)
    monkeypatch.setattr(spotecs.up, "plan_text", plan_text)
    out = cmd("up", "-f", str(path), "--dry-run")
    assert out.code == 0
    assert "No changes." in out.stdout
    assert seen == [("warm_up", False), ("plan_text", True)]
