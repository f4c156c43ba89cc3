"""What each hub process knows of a pool's members, for ``esb health`` (which runs in another process).

Every process that writes to a pool keeps its members' breakers in memory; on each change of a
member's state it writes ``data_dir/pools/<pool>/<pid>.json``: per member its state, consecutive and
total failures, ejections, when its ejection ends (wall clock, UTC) and the last error. ``esb health``
reads the files of live processes and reports the pool ``degraded`` when a member is ejected in any of
them (``down`` when every member is), naming each ejected member and why.
"""

from __future__ import annotations

import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from adapters.pool.breaker import CLOSED, HALF_OPEN, OPEN, MemberState
from esb import files
from esb.context import AdapterContext
from esb.pids import pid_alive

OK, DEGRADED, DOWN = "ok", "degraded", "down"


def status_dir(context: AdapterContext) -> Path:
    """The folder of the pool's status files (one per hub process)."""
    settings = context.settings.resolve_paths(context.project_dir)
    return settings.data_dir / "pools" / context.endpoint


def _until(timestamp: float) -> str:
    """The end of an ejection to the second, rounded up: `esb health` must not call a member's trial
    due before its hub admits it (truncated, it said so up to a second early)."""
    return datetime.fromtimestamp(math.ceil(timestamp), UTC).isoformat(timespec="seconds")


def write_status(folder: Path, members: list[MemberState], now: float) -> None:
    """Write this process's view of the pool's members (``now`` is the breakers' clock reading)."""
    wall = time.time()
    rows = [
        {
            "member": m.name,
            "state": m.state,
            "consecutive": m.consecutive,
            "failed": m.failed,
            "calls": m.calls,
            "ejections": m.ejected_total,
            "ejected_until": _until(wall + m.ejected_until - now) if m.state == OPEN else None,
            "held_in": m.held_in,
            "last_error": m.last_error,
        }
        for m in members
    ]
    files.make_folder(folder)
    files.write_file(folder / f"{os.getpid()}.json", orjson.dumps({"pid": os.getpid(), "members": rows}))


def read_status(folder: Path) -> list[dict[str, Any]]:
    """Return the status files of live processes (a dead process's file is skipped, never removed)."""
    found: list[dict[str, Any]] = []
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            data = orjson.loads(path.read_bytes())
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            continue
        if pid_alive(pid):
            found.append(data)
    return found


def _past(when: Any) -> bool:
    """True when the ISO time ``when`` has passed (an ejection that ended: its trial call is due)."""
    try:
        return datetime.fromisoformat(str(when)) <= datetime.now(UTC)
    except ValueError:
        return False



def health_line(members: list[str], reports: list[dict[str, Any]]) -> tuple[str, str]:
    """Return ``(status, detail)`` of a pool from its processes' status files (the worst view of each
    member wins: ejected in one hub process is ejected)."""
    if not reports:
        return OK, f"{len(members)} member(s): {', '.join(members)}; no hub has written to the pool yet"
    rank = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
    worst: dict[str, dict[str, Any]] = {}
    for report in reports:
        for row in report.get("members", []):
            name = str(row.get("member"))
            seen = worst.get(name)
            if name in members and (
                seen is None or rank.get(row.get("state"), 0) >= rank.get(seen["state"], 0)
            ):
                worst[name] = row
    parts, ejected = [], 0
    for name in members:
        row = worst.get(name, {"state": CLOSED})
        if row["state"] == CLOSED:
            held = row.get("held_in")
            parts.append(
                f"{name} ok"
                if not held
                else f"{name} FAILING, kept in (max_ejected_share reached): {row.get('last_error')}"
            )
            continue
        ejected += 1
        why = f"{row.get('consecutive', 0)} failure(s) in a row, last: {row.get('last_error') or '?'}"
        if row["state"] == OPEN and not _past(row.get("ejected_until")):
            parts.append(
                f"{name} EJECTED until {row.get('ejected_until')} ({why}; {row.get('ejections')} ejection(s))"
            )
        else:
            parts.append(f"{name} EJECTED, trial call due ({why})")
    status = DOWN if ejected == len(members) else DEGRADED if ejected else OK
    if status == DOWN:
        parts.append("panic mode: every member is tried")
    return status, "; ".join(parts)
