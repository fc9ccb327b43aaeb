"""How the plugin prints: aligned tables, ages, JSON/YAML dumps, and colour only on a terminal.

Every function here is pure (text in, text out) so that the commands' output
can be tested without a cluster; the clock is always passed in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import yaml

OUTPUT_FORMATS = ("json", "yaml")

# ANSI SGR codes; used only when stdout is a terminal.
GREEN, YELLOW, RED, BOLD, DIM = "32", "33", "31", "1", "2"


def paint(text: str, code: str | None, color: bool) -> str:
    """``text`` in an ANSI colour when ``color`` is on (a terminal), unchanged otherwise."""
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def dump(data: Any, output: str) -> str:
    """``data`` as ``-o json`` or ``-o yaml`` prints it (keys in the order the server gave them)."""
    if output == "json":
        return json.dumps(data, indent=2) + "\n"
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned as ``kubectl get`` aligns them: three spaces apart, the last one unpadded."""
    all_rows = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(headers))]
    lines = []
    for row in all_rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from the API, or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(since: Any, now: datetime) -> str:
    """How long ago, the way kubectl prints ages: ``45s``, ``3m10s``, ``2h5m``, ``4d``; ``-`` if unknown."""
    moment = parse_time(since) if not isinstance(since, datetime) else since
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 10:
        return f"{minutes}m{seconds}s" if seconds else f"{minutes}m"
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 8:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def number(value: Any) -> str:
    """A measured value, short: ``0.003``, ``212``, ``1.25e-05``; ``-`` when there is none."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.4g}"


def bar(fraction: float, width: int) -> str:
    """A text progress bar ``[#####.....]`` of ``width`` cells in all."""
    inner = max(1, width - 2)
    filled = round(max(0.0, min(1.0, fraction)) * inner)
    return "[" + "#" * filled + "." * (inner - filled) + "]"
