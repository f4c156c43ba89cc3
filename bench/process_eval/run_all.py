"""Run every experiment of the process-library evaluation on SQLite and on PostgreSQL; tee to a file.

    python bench/process_eval/run_all.py [--out results.txt] [--only dbos_,spiff_cost] [--sqlite-only]

The memory runs (``dbos_memory.py``, the second half of ``spiff_cost.py``) take minutes each with
10,000 instances; ``--n`` is passed to them (default 10000).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "dbos_correlation.py", "dbos_parallel.py", "dbos_durability.py", "dbos_compensation.py",
    "dbos_workers.py",
    "dbos_versions.py", "dbos_operators.py", "dbos_cost.py", "dbos_memory.py",
    "spiff_correlation.py", "spiff_parallel.py", "spiff_durability.py", "spiff_compensation.py",
    "spiff_versions.py", "spiff_cost.py",
]  # fmt: skip


def main() -> int:
    """Run the selected scripts in order, each on SQLite then PostgreSQL, and keep their output."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(HERE / "results.txt"))
    parser.add_argument("--only", default="", help="comma-separated prefixes of script names")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--n", type=int, default=10000)
    args = parser.parse_args()
    chosen = [s for s in SCRIPTS if not args.only or any(s.startswith(p) for p in args.only.split(","))]
    with open(args.out, "a", encoding="utf-8") as out:
        out.write(
            f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} {platform.node()}"
            f" python {platform.python_version()}\n"
        )
        for script in chosen:
            for flags in [[]] if args.sqlite_only else [[], ["--pg"]]:
                extra = ["--n", str(args.n)] if script in ("dbos_memory.py", "spiff_cost.py") else []
                done = subprocess.run(
                    [sys.executable, str(HERE / script), *flags, *extra],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                lines = [
                    line
                    for line in done.stdout.splitlines()
                    if line.startswith(("==", "PASS", "FAIL", "      "))
                ]
                text = (
                    "\n".join(lines)
                    + (f"\n!! exit {done.returncode}: {done.stderr[-600:]}" if done.returncode else "")
                    + "\n"
                )
                print(text, end="", flush=True)
                out.write(text)
                out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
