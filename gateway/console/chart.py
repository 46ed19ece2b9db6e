"""Invocations per minute by outcome over the last hour: an SVG drawn on the server (stacked
bars, a title on each for screen readers and hovering), so the page needs no chart library."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from gateway.console.html import esc

MINUTES = 60
OUTCOMES = ("COMPLETED", "FAILED", "EXPIRED", "IN_FLIGHT")
BAR, GAP, HEIGHT = 9, 1, 120


def outcome(status: str) -> str:
    return status if status in OUTCOMES else "IN_FLIGHT"


def per_minute(rows: Sequence[tuple[datetime, str, int]], now: datetime) -> list[Counter[str]]:
    """One counter of outcomes per minute, oldest first, the last being the current minute,
    from (a time in the minute, a status, how many)."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=MINUTES - 1)
    buckets: list[Counter[str]] = [Counter() for _ in range(MINUTES)]
    for created, status, count in rows:
        index = int((created - start).total_seconds() // 60)
        if 0 <= index < MINUTES:
            buckets[index][outcome(status)] += count
    return buckets


def svg(rows: Sequence[tuple[datetime, str, int]], now: datetime) -> str:
    buckets = per_minute(rows, now)
    peak = max((sum(b.values()) for b in buckets), default=0) or 1
    bars = []
    for index, counts in enumerate(buckets):
        bars.extend(_stack(index, counts, peak, MINUTES - 1 - index))
    width = MINUTES * (BAR + GAP)
    total = sum(sum(b.values()) for b in buckets)
    legend = "".join(f'<li><span class="swatch o-{o.lower()}"></span>{esc(o)}</li>' for o in OUTCOMES)
    return (
        f'<figure class="chart"><svg viewBox="0 0 {width} {HEIGHT}" preserveAspectRatio="none" role="img" '
        f'aria-label="Invocations per minute over the last hour: {total} in all, at most {peak} a minute">'
        f"{''.join(bars)}</svg><figcaption>Invocations per minute, last hour (peak {peak}/min)"
        f'<ul class="legend">{legend}</ul></figcaption></figure>'
    )


def _stack(index: int, counts: Counter[str], peak: int, minutes_ago: int) -> list[str]:
    x, bottom, rects = index * (BAR + GAP), float(HEIGHT), []
    for name in OUTCOMES:
        if not counts[name]:
            continue
        height = counts[name] / peak * HEIGHT
        bottom -= height
        label = f"{minutes_ago} min ago: {counts[name]} {name}"
        rects.append(
            f'<rect class="o-{name.lower()}" x="{x}" y="{bottom:.1f}" width="{BAR}" height="{height:.1f}">'
            f"<title>{esc(label)}</title></rect>"
        )
    return rects
