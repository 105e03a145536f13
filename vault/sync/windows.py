"""Incremental pulls by time window, the shape shop platforms share (Pinduoduo, Youzan).

A pull walks windows ``[start, end]`` of the platform's update time: each at most ``longest``
seconds, ending ``lag`` seconds behind the clock (the platform indexes late), the first of a run
starting ``overlap`` seconds before the cursor's ``through`` once the pull has caught up (an
order updated while the last run read is not missed), or ``history_days`` back on the first run.
The cursor is ``{"through": seconds, "caught_up": bool}`` plus the connector's own keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vault.sync.contract import Page

__all__ = ["caught_up", "next_window"]


def next_window(
    state: Mapping[str, Any],
    *,
    now: int,
    lag: int,
    overlap: int,
    history_days: float,
    longest: int,
) -> tuple[int, int]:
    """The next window after the cursor ``state``; ``end <= start`` when there is none yet."""
    if "through" in state:
        through = int(state["through"])
        start = through - overlap if state.get("caught_up") else through
    else:
        start = now - int(history_days * 86400)
    return start, min(now - lag, start + longest)


def caught_up(state: Mapping[str, Any], start: int) -> Page:
    """The empty page of a pull with no window to read yet: its cursor stays where it was."""
    through = int(state.get("through", start))
    return Page(records=(), cursor={"through": through, "caught_up": True}, more=False)
