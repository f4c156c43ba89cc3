"""Where one hub process's memory goes while it drains a RabbitMQ backlog (rabbit_memory.py's rise).

    .venv/bin/python bench/memory_profile.py [--messages 30000] [--early 2000] [--code worktree|HEAD]
        [--runs traced,plain,arena2,seen1k] [--frames 1] [--keep]
    .venv/bin/python bench/memory_profile.py --messages 3000 --early 500 --runs traced --frames 25

Same servers and backlog as ``rabbit_memory.py`` (throwaway RabbitMQ and PostgreSQL on loopback, valid
Siebel orders on ``crm.orders.out``, ONE ``esb --env production run`` with crm-order-to-iom), each run in
a fresh vhost and database. The hub runs under ``bench/memory_hub.py``, which dumps its memory figures on
SIGUSR2: after ``--early`` deliveries and after the last (then ``malloc_trim(0)`` and VmRSS again).

- ``traced``: ``PYTHONTRACEMALLOC=<frames>``; prints the top 25 ``compare_to(early, "lineno")``
  differences, the top files and (frames > 1) the top tracebacks. Its RSS is inflated by tracemalloc
  itself, and it is slow: ~4x with 1 frame, ~35x with 25 (so: 25 frames on 3,000 messages, 1 on 30,000);
- ``plain``: no tracing (RSS as in production); ``arena2``: ``MALLOC_ARENA_MAX=2``;
- ``seen1k``: the journal's Seen cache capped at 1,000 entries instead of 20,000 (a causal check).

The hub runs a frozen copy of the code and project (``--code``: the working tree, or ``git archive`` of a
ref) on ``PYTHONPATH``, so edits made meanwhile change neither the runs nor the line numbers. Printed per
run: VmRSS, tracemalloc's total, pymalloc's arenas, glibc's heap and the Seen caches (MB). The defaults
take ~5.5 minutes on the 2-core VM (servers, four 30,000-message fills and drains).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_report import report  # bench/ is not a package: its folder is on sys.path
from rabbit_bench import bodies
from rabbit_memory import delivered, fill, queue_depth
from servers import throwaway_servers

from tests.integration.cluster import ProductionHub, production_environ, production_project
from tests.integration.pg_server import PostgresServer
from tests.integration.rabbit_server import RabbitServer

BENCH = Path(__file__).resolve().parent

#: Extra environment of each kind of run.
RUNS: dict[str, dict[str, str]] = {
    "traced": {},  # PYTHONTRACEMALLOC=--frames
    "plain": {},
    "arena2": {"MALLOC_ARENA_MAX": "2"},
    "seen1k": {"ESB_MEMORY_SEEN_SIZE": "1000"},
}
#: What the hub needs of the repository (copied for ``--code worktree``).
KEEP = ("esb", "adapters", "config", "canonical_model", "transforms", "routes.yaml", "pyproject.toml")


class MemoryHub(ProductionHub):
    """ProductionHub started through bench/memory_hub.py (the SIGUSR2 memory dump)."""

    def start(self) -> None:
        """Start the hub process under the wrapper."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(BENCH / "memory_hub.py"), "--project", str(self.root), "--env",
                 "production", "run", *[arg for route in self.routes for arg in ("--route", route)]],
                env=self.environ, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def dump(self, folder: Path, label: str, timeout: float = 600) -> dict[str, Any]:
        """Ask for the figures named ``label`` and wait for them."""
        assert self.proc is not None
        (folder / "request").write_text(label)
        self.proc.send_signal(signal.SIGUSR2)
        target, deadline = folder / f"{label.removesuffix('+trim')}.json", time.monotonic() + timeout
        while not target.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"no memory figures for {label!r}: see {self.log}")
            time.sleep(0.2)
        return dict(json.loads(target.read_text()))


def freeze(code: str, into: Path) -> Path:
    """A frozen copy of the code and project: the working tree's files, or ``git archive`` of a ref."""
    root = BENCH.parent
    if code == "worktree":
        for name in KEEP:
            copy = shutil.copytree if (root / name).is_dir() else shutil.copy2
            copy(root / name, into / name)
        return into
    archive = subprocess.run(["git", "archive", code, *KEEP], cwd=root, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def drain(
    rabbit: RabbitServer, pg: PostgresServer, payloads: list[bytes], args: Any, run: str
) -> dict[str, Any]:
    """Fill the backlog, let one wrapped hub drain it, dump its figures early and at the end."""
    work = Path(tempfile.mkdtemp(prefix=f"esb-memprof-{run}-"))
    broker_url = rabbit.create_vhost("memprof")
    extra = {"ESB_MEMORY_DIR": str(work), "PYTHONPATH": str(args.root), **RUNS[run]}
    environ = production_environ(work / "var", broker_url, pg.create_database("memprof"), **extra)
    environ.pop("PYTHONTRACEMALLOC", None)
    if run == "traced":
        environ["PYTHONTRACEMALLOC"] = str(args.frames)
    fill(production_project(environ, args.root), payloads, args.messages)
    queue_depth(rabbit, broker_url.rsplit("/", 1)[1], "crm.orders.out", args.messages)
    engine = sa.create_engine(environ["ESB_JOURNAL__URL"])
    hub = MemoryHub(environ, work / "hub.log", root=args.root)
    result: dict[str, Any] = {"run": run, "work": work}
    start = tick = time.perf_counter()
    hub.start()
    assert hub.proc is not None
    try:
        while (done := delivered(engine)) < args.messages:
            if hub.proc.poll() is not None:
                sys.exit(f"the hub exited with {hub.proc.returncode}: see {work / 'hub.log'}")
            if done >= args.early and "early" not in result:
                asked = time.perf_counter()
                result["early"] = hub.dump(work, "early") | {"at": done}
                took = time.perf_counter() - asked
                print(
                    f"  {run}: early figures after {asked - start:.0f} s, took {took:.0f} s", file=sys.stderr
                )
            if time.perf_counter() - tick > 30:
                tick = time.perf_counter()
                print(f"  {run}: {done} delivered after {tick - start:.0f} s", file=sys.stderr)
            time.sleep(0.2)
        result["seconds"] = time.perf_counter() - start
        result["end"] = hub.dump(work, "end+trim") | {"at": done}
    finally:
        hub.stop()
        engine.dispose()
    return result


def main() -> None:
    """Run each kind of run on the same servers and print the tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=30_000, help="backlog depth")
    parser.add_argument("--early", type=int, default=2_000, help="delivered messages at the first dump")
    parser.add_argument("--frames", type=int, default=1, help="tracemalloc frames of the traced run")
    parser.add_argument("--keep", action="store_true", help="keep the runs' folders (logs, snapshots)")
    parser.add_argument("--code", default="worktree", help="'worktree' or a git ref to run the hub from")
    parser.add_argument(
        "--runs", default="traced,plain,arena2,seen1k", help=f"comma-separated, of {list(RUNS)}"
    )
    args = parser.parse_args()
    runs = args.runs.split(",")
    results = []
    args.root = freeze(args.code, Path(tempfile.mkdtemp(prefix="esb-memprof-code-")))
    with throwaway_servers() as (rabbit, pg):
        payloads = bodies(min(args.messages, 3000))
        for run in runs:
            results.append(drain(rabbit, pg, payloads, args, run))
            print(f"{run}: done in {results[-1]['seconds']:.0f} s", file=sys.stderr)
    report(results, args)
    for path in [r["work"] for r in results] + [args.root]:
        print(f"kept {path}") if args.keep else shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
