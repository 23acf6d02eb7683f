"""Stored times (ISO 8601, UTC) as a person reads them, in local time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def human_time(stamp: str, now: datetime | None = None) -> str:
    """``today 14:05``, ``yesterday 09:12``, ``3 Dec 14:05`` this year, ``2025-11-30`` before.

    A stamp without a zone is taken as UTC (how history stores times); text that is not a time
    is returned as it is.
    """
    try:
        when = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return stamp
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone()
    now = (now or datetime.now().astimezone()).astimezone(when.tzinfo)
    clock = f"{when:%H:%M}"
    if when.date() == now.date():
        return f"today {clock}"
    if when.date() == now.date() - timedelta(days=1):
        return f"yesterday {clock}"
    if when.year == now.year:
        return f"{when.day} {when:%b} {clock}"
    return f"{when:%Y-%m-%d}"
