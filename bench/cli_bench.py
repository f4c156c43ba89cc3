"""Cold start of the operators' commands: ``esb trace``, ``esb health``, ``esb dlq list``.

    .venv/bin/python bench/cli_bench.py [--runs 5] [--imports] [--before OTHER_CHECKOUT]
    .venv/bin/python bench/cli_bench.py --journal URL --key KEY [--evict [--pg-base BASE]]
        [--before OTHER_CHECKOUT [--before-journal URL]]

Each command runs in a fresh process (as an operator types it) against this repository's project on a
fresh data folder (embedded defaults: SQLite journal and queues) whose journal holds one CRM order, which
``esb trace`` looks up by id (so it reads routes.yaml to name the order's system). One untimed run of
each command first creates the journal and queues and the bytecode caches: Python's ``.pyc`` files go to
a temporary ``PYTHONPYCACHEPREFIX``, as an installed package has them (``PYTHONDONTWRITEBYTECODE`` is
ignored here: without caches every start compiles the sources again). The runs of all commands and of
``python -c pass`` (the interpreter's own start, the floor) alternate, so a busy moment of a shared
machine falls on all of them alike; each line prints the median wall time, the time above the floor, and
the target (300 ms), with the median CPU time (user + system) of the process, which a busy machine
inflates far less than wall time. ``--before DIR`` runs the same commands from another checkout (the
code before a change) in the same alternation. ``--imports`` adds, per command, the ten top-level
imports that cost most (``python -X importtime``), to show what to make lazy next.

``--journal URL --key KEY`` runs the commands on a journal filled before (``bench/journal_fill.py``: 10 M
messages) instead, ``esb trace KEY``; ``--evict`` also evicts the journal's files from the page cache
before every run (bench/page_cache.py; a PostgreSQL server kept by ``bench/servers.py postgres start
BASE`` is restarted: ``--pg-base BASE``), so each run reads the journal from the disk as after a reboot.
``--before-journal URL`` gives the ``--before`` checkout its own copy of the journal, for a change whose
migration the other checkout does not know (e.g. ``CREATE DATABASE b TEMPLATE a`` before migrating ``a``).
"""

from __future__ import annotations

import argparse
import inspect
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.page_cache import evicter, journal_files  # noqa: E402

TARGET_MS = 300.0
#: The journaled message ``esb trace`` looks up.
TRACED = "bench-order-1"


def commands(traced: str = TRACED) -> dict[str, list[str]]:
    """label -> arguments after ``python``; ``esb trace`` looks up ``traced``."""
    return {
        "python -c pass (floor)": ["-c", "pass"],
        "esb trace ID": ["-m", "esb.cli", "trace", traced],
        "esb health": ["-m", "esb.cli", "health"],
        "esb dlq list": ["-m", "esb.cli", "dlq", "list"],
    }


def environ(checkout: Path, data_dir: str, pycache: str, journal: str | None = None) -> dict[str, str]:
    """The commands' environment: ``checkout`` first on the path, the data folder, bytecode caches, and
    ``journal`` as the journal's URL if given."""
    env = dict(os.environ, ESB_DATA_DIR=data_dir, PYTHONPATH=str(checkout), PYTHONPYCACHEPREFIX=pycache)
    env.pop("ESB_ENV", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if journal:
        env["ESB_JOURNAL__URL"] = journal
    return env


def seed_journal(data_dir: str) -> None:
    """Journal one CRM order received and delivered, for ``esb trace`` to find."""
    from esb.journal import Journal
    from esb.message import Message

    message = Message(body=b"<SiebelMessage/>", id=TRACED, business_keys={"order_id": "SO-BENCH-1"})
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with Journal(f"sqlite:///{data_dir}/journal.db") as journal:
        journal.received("crm-order-to-iom", message)
        journal.mark_delivered("crm-order-to-iom", message, "iom.orders_in", event=True, finish=message)


def run_once(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one cold run (its exit code is the command's own: health
    says 1 when degraded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cwd = env["PYTHONPATH"]
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, check=False)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1, 2) or b"Traceback" in done.stderr:
        sys.exit(f"{args} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def top_imports(args: list[str], env: dict[str, str], count: int = 10) -> list[tuple[float, str]]:
    """The ``count`` top-level imports with the most cumulative time (ms) in one run of ``args``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=env["PYTHONPATH"], env=env, capture_output=True, check=False,
    )  # fmt: skip
    rows = []
    for line in done.stderr.decode(errors="replace").splitlines():
        parts = line.split("|")
        if len(parts) == 3 and line.startswith("import time:") and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            if name.startswith(" ") and not name.startswith("  "):  # top level: one space after '|'
                rows.append((int(parts[1]) / 1000, name.strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--imports", action="store_true", help="also list each command's costliest imports")
    parser.add_argument("--before", type=Path, default=None, help="another checkout, measured alike")
    parser.add_argument("--journal", help="a filled journal's URL (default: a fresh one with one order)")
    parser.add_argument(
        "--before-journal",
        help="with --journal and --before: the other checkout's own copy of the journal (its schema may be"
        " older: a migration's before and after on copies of one fill)",
    )
    parser.add_argument("--key", default=TRACED, help="with --journal: the key esb trace looks up")
    parser.add_argument("--evict", action="store_true", help="with --journal: evict it before every run")
    parser.add_argument("--pg-base", type=Path, help="with --evict on PostgreSQL: the kept server's folder")
    args = parser.parse_args()
    # the before checkout's SQLite copy evicted too (a PostgreSQL server's restart leaves both cold)
    other = args.before_journal
    cold_urls = [args.journal, *([other] if other and journal_files(other) else [])]
    colds = [evicter(url, args.pg_base) for url in cold_urls] if args.journal and args.evict else []

    def make_cold() -> None:
        for cold in colds:
            cold()

    with tempfile.TemporaryDirectory(prefix="esb-cli-bench-") as work:
        checkouts = {"": ROOT} if args.before is None else {"": ROOT, " (before)": args.before.resolve()}
        runs: dict[str, tuple[list[str], dict[str, str]]] = {}
        for suffix, checkout in checkouts.items():
            data_dir = f"{work}/data{len(runs)}"
            journal = args.before_journal if suffix and args.before_journal else args.journal
            env = environ(checkout, data_dir, f"{work}/pyc{len(runs)}", journal)
            if not args.journal:
                # seeded by the checkout's own code: its journal schema may be older than this one's
                seed = f"from pathlib import Path\nTRACED = {TRACED!r}\n{inspect.getsource(seed_journal)}\n"
                seed += f"seed_journal({data_dir!r})\n"
                subprocess.run([sys.executable, "-c", seed], cwd=checkout, env=env, check=True, timeout=120)
            for label, command in commands(args.key).items():
                if not (suffix and label.startswith("python")):
                    runs[label + suffix] = (command, env)
        for command, env in runs.values():  # journal, queues and bytecode caches; not timed
            run_once(command, env)
        times: dict[str, list[float]] = {label: [] for label in runs}
        cpu: dict[str, list[float]] = {label: [] for label in runs}
        for _ in range(args.runs):
            for label, (command, env) in runs.items():
                make_cold()
                wall, used = run_once(command, env)
                times[label].append(wall)
                cpu[label].append(used)
        floor = statistics.median(times["python -c pass (floor)"]) * 1000
        print(f"cold runs: median of {args.runs}, alternated; target < {TARGET_MS:.0f} ms (wall)")
        print(
            f"{'command':<33} {'median ms':>9} {'above floor':>11} {'min':>6} {'max':>6} {'CPU ms':>6}"
            "  target"
        )
        for label, taken in times.items():
            median = statistics.median(taken) * 1000
            verdict = "" if label.startswith("python") else ("met" if median < TARGET_MS else "missed")
            print(
                f"{label:<33} {median:>9.0f} {median - floor:>11.0f} {min(taken) * 1000:>6.0f}"
                f" {max(taken) * 1000:>6.0f} {statistics.median(cpu[label]) * 1000:>6.0f}  {verdict}"
            )
        if args.imports:
            for label, (command, env) in runs.items():
                if not label.startswith("python"):
                    listed = ", ".join(f"{name} {ms:.0f}" for ms, name in top_imports(command, env))
                    print(f"{label} imports (ms, -X importtime): {listed}")


if __name__ == "__main__":
    main()
