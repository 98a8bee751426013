"""Numbers and durations as people read them: 1,204 calls, 18 s, 3 min 20 s, 1 h 05 min, 100/min, 48/s.

One module so that the plan's estimate sentence (engine/ratelimit.py) and the progress lines
(engine/progress.py) say durations and rates the same way.
"""

from __future__ import annotations

import math


def count(n: int) -> str:
    """1204 → 1,204."""
    return f"{n:,}"


def plural(n: int, one: str, many: str | None = None) -> str:
    """`1 API call`, `1,204 API calls`."""
    return f"{count(n)} {one if n == 1 else (many or one + 's')}"


def _trim(x: float) -> str:
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def duration(seconds: float) -> str:
    """0.3 → under 1 s; 4.24 → 4.2 s; 18.4 → 18 s; 200 → 3 min 20 s; 3900 → 1 h 05 min (seconds dropped
    above an hour: an estimate is not that precise)."""
    if seconds < 0.95:
        return "under 1 s"
    if seconds < 9.95:
        return f"{_trim(seconds)} s"
    total = int(round(seconds))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        m, s = divmod(total, 60)
        return f"{m} min {s:02d} s"
    minutes = int(round(seconds / 60))
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min"


def quota_rate(per_second: float) -> str:
    """A quota in the unit it is documented in, without float noise: 10 → 10/s, 100/60 → 100/min, 2.5 → 2.5/s."""
    if math.isclose(per_second, round(per_second), abs_tol=1e-9) and per_second >= 1:
        return f"{count(int(round(per_second)))}/s"
    if math.isclose(per_second * 10, round(per_second * 10), abs_tol=1e-9) and per_second >= 0.1:
        return f"{_trim(per_second)}/s"
    per_minute = per_second * 60
    if math.isclose(per_minute, round(per_minute), abs_tol=1e-6):
        return f"{count(int(round(per_minute)))}/min"
    return f"{_trim(per_second)}/s"


def rate(per_second: float) -> str:
    """A measured rate: 48.3 → 48/s, 2.46 → 2.5/s, 0.2 → 12/min."""
    if per_second >= 10:
        return f"{count(int(round(per_second)))}/s"
    if per_second >= 1:
        return f"{_trim(per_second)}/s"
    return f"{_trim(per_second * 60)}/min"
