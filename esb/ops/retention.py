"""``esb journal stats`` and ``esb journal prune``, and the hub's scheduled prune (leader only).

The policy comes from ``journal.retention`` (settings): days per outcome, archive on or off, how often
the hub prunes. Several hub processes share one journal; only the holder of the ``journal:prune``
leader lock (esb/runtime/leader.py) prunes, the others wait and take over if it dies.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from esb.config.settings import Settings
from esb.journal import Journal
from esb.journal.retention import Policy, PruneResult
from esb.journal.usage import SAMPLED, Usage
from esb.logging import get_logger
from esb.ops.common import iso, table

#: Name of the leader lock of the scheduled prune.
LEADER_LOCK = "journal:prune"


def archive_folder(settings: Settings) -> Path:
    """Where pruned messages are archived: ``{data_dir}/archive/journal``."""
    return Path(settings.data_dir) / "archive" / "journal"


def policy(
    settings: Settings,
    *,
    delivered_days: float | None = None,
    filtered_days: float | None = None,
    archive: bool | None = None,
) -> Policy:
    """Return the retention policy of ``settings``, with a command's overrides."""
    ret = settings.journal.retention
    keep = ret.archive if archive is None else archive
    return Policy(
        delivered_days=ret.delivered_days if delivered_days is None else delivered_days,
        filtered_days=ret.filtered_days if filtered_days is None else filtered_days,
        archive=archive_folder(settings) if keep else None,
        batch=ret.batch,
    )


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _when(value: datetime | None) -> str:
    return iso(value) if value is not None else "-"


def render_usage(found: Usage) -> str:
    """Return ``esb journal stats`` as text."""
    per = "-" if found.bytes_per_message is None else _size(found.bytes_per_message)
    about = "~" if found.estimated else ""
    lines = [
        f"size: {_size(found.bytes)} ({_size(found.free_bytes)} free for reuse)"
        + (f", auto_vacuum {found.auto_vacuum}" if found.auto_vacuum else ""),
        f"messages: {about}{found.messages:,}  bytes per message: {about}{per}",
        f"oldest: {_when(found.oldest)}  newest: {_when(found.newest)}",
        "",
        table(["TABLE", "ROWS"], [[name, f"{about if name in SAMPLED else ''}{n:,}"]
                                  for name, n in found.rows.items()]),
        "",
        table(["OUTCOME", "MESSAGES"],
              [[name, f"{about}{n:,}"] for name, n in sorted(found.outcomes.items())]),
    ]
    if found.estimated:
        lines += ["", "~ estimated from samples of the keys (dead letters counted); --exact counts every row"]
    return "\n".join(lines)


def render_prune(result: PruneResult) -> str:
    """Return what a prune did as text."""
    rows = ", ".join(f"{name} {n:,}" for name, n in sorted(result.rows.items())) or "no rows"
    out = f"pruned {result.messages:,} messages ({rows}); kept {result.kept:,} older ones not finished"
    if result.archives:
        out += f"; archived to {', '.join(sorted(result.archives))}"
    if result.vacuumed_pages:
        out += f"; {result.vacuumed_pages:,} pages given back to the file system"
    return out


class ScheduledPrune(threading.Thread):
    """Prunes the journal every ``journal.retention.every`` seconds while this process is the leader."""

    def __init__(self, journal: Journal, settings: Settings, election: Any) -> None:
        super().__init__(name="journal-prune", daemon=True)
        self.journal = journal
        self.settings = settings
        self.election = election
        self.runs = 0
        self._stop_event = threading.Event()
        self.log = get_logger("retention")

    @staticmethod
    def wanted(settings: Settings) -> bool:
        """True when the settings ask for pruning at all (some days set and an interval)."""
        ret = settings.journal.retention
        return ret.every > 0 and (ret.delivered_days is not None or ret.filtered_days is not None)

    def run_once(self, now: datetime | None = None) -> PruneResult | None:
        """Prune now if this process leads; None when it does not (or the prune failed: logged)."""
        if not self.election.is_leader:
            return None
        try:
            result = self.journal.prune(policy(self.settings), now=now)
        except Exception as error:  # the next run tries again; the hub keeps running
            self.log.error("journal prune failed", error=str(error))
            return None
        self.runs += 1
        self.log.info("journal pruned", **result.as_dict())
        return result

    def run(self) -> None:
        """Run until stopped: wait one interval, prune if leader."""
        while not self._stop_event.wait(self.settings.journal.retention.every):
            self.run_once()

    def stop(self) -> None:
        """Stop after the prune in progress (if any)."""
        self._stop_event.set()
