"""The `esb` CLI with a SIGUSR2 handler that writes the process's memory figures (for memory_profile.py).

    ESB_MEMORY_DIR=/tmp/x PYTHONTRACEMALLOC=25 python bench/memory_hub.py --env production run --route R

On SIGUSR2 it reads a label from ``$ESB_MEMORY_DIR/request`` and writes ``<label>.json``: VmRSS and
VmHWM, glibc ``mallinfo2`` (malloc'd bytes in use and free in its arenas), pymalloc's arenas
(``sys._debugmallocstats``), the journal's ``Seen`` caches (entries, deep size) and, when tracemalloc is
on, its traced total and own overhead, with ``<label>.snap`` (the snapshot). A label ending in ``+trim``
first calls glibc ``malloc_trim(0)`` and records VmRSS again. The JSON is written last (by a rename).
VmRSS and VmHWM are read before anything else: the figures below cost memory of their own.
``ESB_MEMORY_SEEN_SIZE=N`` caps the Seen caches at N entries instead of the default (an experiment).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import signal
import sys
import tempfile
import tracemalloc
import weakref
from pathlib import Path
from types import FrameType
from typing import Any

from esb.journal.seen import Seen

LIBC = ctypes.CDLL("libc.so.6")
#: Every Seen cache made in this process (the journal's).
CACHES: weakref.WeakSet[Seen] = weakref.WeakSet()
MB = 1024 * 1024


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (sums over every malloc arena)."""

    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]  # fmt: skip


def status_mb(field: str) -> float:
    """``field`` (VmRSS, VmHWM) of this process's /proc status, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def mallinfo() -> dict[str, float]:
    """glibc heap, MB: obtained from the system (sbrk + mmap), in use, free inside the arenas."""
    LIBC.mallinfo2.restype = MallInfo2
    info = LIBC.mallinfo2()
    return {"heap": (info.arena + info.hblkhd) / MB, "in_use": (info.uordblks + info.hblkhd) / MB,
            "free": info.fordblks / MB}  # fmt: skip


def pymalloc() -> dict[str, float]:
    """pymalloc, MB: arenas held, bytes in live blocks, free blocks in used pools, unused pools."""
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode()

    def number(pattern: str) -> float:
        found = re.search(pattern + r"\s*=\s*([\d,]+)", text)
        return int(found.group(1).replace(",", "")) / MB if found else 0.0

    return {"arenas": number(r"\d+ arenas \* \d+ bytes/arena"), "live": number("# bytes in allocated blocks"),
            "free_blocks": number("# bytes in available blocks"),
            "unused_pools": number(r"\d+ unused pools \* \d+ bytes")}  # fmt: skip


def seen_caches() -> list[dict[str, float]]:
    """Entries and deep size (MB) of every Seen cache made in this process.

    Counted per entry: the key tuple, the message id, the key set, its (name, value) tuples and values;
    the route id and the key names are shared by every entry and left out. Nothing big is allocated.
    """
    out = []
    for cache in list(CACHES):
        with cache._lock:
            total = sys.getsizeof(cache._items)
            for (_, message_id), keys in cache._items.items():
                total += 56 + sys.getsizeof(message_id) + sys.getsizeof(keys)  # 56: a 2-tuple
                total += sum(56 + sys.getsizeof(value) for _, value in keys)
            out.append({"entries": len(cache._items), "mb": total / MB})
    return out


def on_request(signum: int, frame: FrameType | None) -> None:
    """Write the figures (and the tracemalloc snapshot) named by the request file."""
    folder = Path(os.environ["ESB_MEMORY_DIR"])
    label = (folder / "request").read_text().strip()
    trim, label = label.endswith("+trim"), label.removesuffix("+trim")
    # first, before this handler's own work costs memory
    stats: dict[str, Any] = {"rss": status_mb("VmRSS"), "hwm": status_mb("VmHWM")}
    gc.collect()
    if trim:
        LIBC.malloc_trim(0)
        stats["rss_after_trim"] = status_mb("VmRSS")
    if tracemalloc.is_tracing():
        traced, peak = tracemalloc.get_traced_memory()
        stats.update(
            traced=traced / MB, traced_peak=peak / MB, overhead=tracemalloc.get_tracemalloc_memory() / MB
        )
        tracemalloc.take_snapshot().dump(str(folder / f"{label}.snap"))
    stats.update(malloc=mallinfo(), pymalloc=pymalloc(), seen=seen_caches())
    (folder / f"{label}.tmp").write_text(json.dumps(stats))
    (folder / f"{label}.tmp").rename(folder / f"{label}.json")


def main() -> None:
    """Install the handler (and the Seen size, if asked), then run the esb CLI on ``sys.argv``."""
    original = Seen.__init__
    size = int(os.environ.get("ESB_MEMORY_SEEN_SIZE") or 0)

    def init(self: Seen, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **({"size": size} | kwargs if size else kwargs))
        CACHES.add(self)

    Seen.__init__ = init  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR2, on_request)
    from esb.cli.main import main as esb_main

    esb_main()


if __name__ == "__main__":
    main()
