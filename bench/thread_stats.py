"""Where a server process's CPU and context switches go, thread by thread, grouped by role.

Used by ``soap_listener_bench.py --per-thread`` and ``rest_bench.py --per-thread``: the server process
takes a snapshot of its own threads in ``/proc/self/task`` (user + system CPU, voluntary and involuntary
switches) when a window opens and another when it closes, and reports the difference per answered
request for each role: the Python thread's name mapped to a role by :data:`ROLES` (waitress's workers,
the I/O loop, the route's reader...), every other thread under its own name. A voluntary switch is a
thread going to sleep (a lock, the GIL, a socket with nothing to read); an involuntary one is the kernel
taking the core from it.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

#: (pattern on the Python thread's name, role) in order: the first match names the role.
ROLES: tuple[tuple[str, str], ...] = (
    (r"^waitress-\d+$", "waitress workers"),
    (r"^soap-", "waitress I/O loop"),
    (r"^rest-(bare$|\d)", "cheroot I/O loop"),
    (r"^CP Server Thread-\d+$", "cheroot workers"),
    (r"^MainThread$", "main thread"),
)
_TICK = os.sysconf("SC_CLK_TCK")
#: Per thread: (CPU seconds, voluntary switches, involuntary switches).
Snapshot = dict[int, tuple[float, int, int]]


def snapshot() -> Snapshot:
    """The CPU and switches of every thread of this process, by native thread id."""
    out: Snapshot = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat.rpartition(")")[2].split()
        switches = dict(
            line.split(":\t") for line in status.splitlines() if line.endswith(tuple("0123456789"))
        )
        out[int(task.name)] = (
            (int(fields[11]) + int(fields[12])) / _TICK,
            int(switches.get("voluntary_ctxt_switches", 0)),
            int(switches.get("nonvoluntary_ctxt_switches", 0)),
        )
    return out


def role(name: str) -> str:
    """The role a thread's name belongs to (its name when no pattern matches, digits dropped)."""
    for pattern, found in ROLES:
        if re.match(pattern, name):
            return found
    return re.sub(r"[-:]?\d+(\.\d+)*", "", name) or name


def per_role(before: Snapshot, after: Snapshot, answered: int) -> dict[str, list[float]]:
    """Per role: [threads, CPU µs, voluntary switches, involuntary switches] per answered request."""
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    out: dict[str, list[float]] = {}
    for tid, (cpu, vol, inv) in after.items():
        cpu0, vol0, inv0 = before.get(tid, (0.0, 0, 0))
        if cpu == cpu0 and vol == vol0 and inv == inv0:
            continue
        row = out.setdefault(role(names.get(tid, "other")), [0.0, 0.0, 0.0, 0.0])
        row[0] += 1
        row[1] += (cpu - cpu0) / max(answered, 1) * 1e6
        row[2] += (vol - vol0) / max(answered, 1)
        row[3] += (inv - inv0) / max(answered, 1)
    return out


def table(rows: dict[str, list[float]]) -> str:
    """The per-role figures as text lines, busiest role first."""
    lines = [f"  {'thread role':32} {'threads':>7} {'CPU µs/req':>10} {'vol. sw/req':>11} {'invol./req':>10}"]
    for name, (threads, cpu, vol, inv) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
        lines.append(f"  {name[:32]:32} {threads:7.0f} {cpu:10.1f} {vol:11.2f} {inv:10.2f}")
    return "\n".join(lines)
