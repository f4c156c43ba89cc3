"""Instructions per message of the CRM-order route, by stage, under callgrind: figures the load cannot move.

    .venv/bin/python bench/route_instructions.py [--messages 400] [--warmup 200] [--plain] [--top 25]
        [--json] [--keep DIR] [--rabbit]

Timings on this shared 2-core machine move by 10-20 % between runs (other engineers' suites keep the
load at 5-30), more than most single optimisations save. Instruction counts do not depend on the load:
this script runs the real ``crm-order-to-iom`` route's per-message work under ``valgrind
--tool=callgrind`` and reports instructions (Ir) per message.

What runs: the route worker of ``bench/route_profile.py`` on the embedded default (SQLite transport,
the batched journal on SQLite; no network, no servers), driven **synchronously** from this process: no
hub threads, no polling, no batch in flight (``overlap_batches = False``), so two runs of the same code
do the same work. The backlog (``--warmup`` + ``--messages`` orders) is published before the worker
starts; callgrind instruments nothing until the first batch after the warm-up (``--instr-atstart=no``:
the imports run ~10x faster than instrumented), where it starts and zeroes its counts, and it
dumps them (``CALLGRIND_DUMP_STATS``) after the last message is acked, so imports, compilation, the
backlog's publishing and the warm-up are left out.

By stage: the functions ``route_profile.py`` times are wrapped here too, but instead of reading a
clock each timed call goes through a C function named after its stage and the stage it is nested in
(``s_<stage>__<parent>``, a tiny extension compiled at start-up with gcc). Callgrind's inclusive cost
of those functions gives each stage's *exclusive* instructions (a nested stage's are subtracted from
its parent's). The wrappers cost instructions of their own (about 2,000 per timed call, ~20 calls a
message): ``--plain`` runs without them for the true total, and the table says how far the stage sum
is from it. ``--rabbit`` runs the production path instead: RabbitMQ and PostgreSQL (throwaway servers of
``bench/servers.py``, started by this script outside callgrind), the production settings (batches of 200,
prefetch 400) with the heartbeat off (no heartbeat thread in the measured region), the backlog published
by this script before the child starts; the worker is driven the same synchronous way. Each run also
prints the top C functions by self cost (libxml2, SQLite, zlib, the interpreter's eval loop...).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: The code measured: this checkout, or ``--code DIR`` (another worktree, e.g. main's, as "before").
CODE = Path(os.environ.get("ESB_INSTRUCTIONS_CODE", ROOT))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(CODE))

#: Stages this harness knows; ``journal body compression`` (BodyCodec.encode) is its own stage here.
STAGES = (
    "receive", "raw keys (XPath)", "decode (XML parse)", "mapping crm/siebel_order_to_canonical",
    "mapping iom/canonical_to_order_request", "validation", "expressions", "journal SQL", "journal rows",
    "journal JSON", "journal body compression", "serialise body", "publish", "confirm wait", "ack",
    "worker loop",
    # --detail: the worker loop's and the journal's own code, split further
    "pipeline", "message replace", "outlet routing", "metrics", "tracing scope", "drop recording",
    "seen cache", "delivery settle",
    # --journal: the journal SQL stage split by statement (the rest stays in "journal SQL": its Python)
    "journal messages", "journal events", "journal keys", "journal minutes", "journal id look-up",
    "journal begin", "journal commit", "journal connect", "journal parameters", "journal seen cache",
    "journal keys of", "journal figures",
)  # fmt: skip
NONE = "none"


def symbol(stage: str) -> str:
    """A C identifier for ``stage``."""
    return re.sub(r"[^a-z0-9]+", "_", stage.lower()).strip("_")


def trampoline_source() -> str:
    """C source of the extension: one function per (stage, parent) pair, and the callgrind requests."""
    names = [symbol(s) for s in STAGES]
    lines = [
        "#define PY_SSIZE_T_CLEAN",
        "#include <Python.h>",
        "#include <valgrind/callgrind.h>",
        "static PyObject *zero(PyObject *m, PyObject *a)"
        " { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; Py_RETURN_NONE; }",
        "static PyObject *dump(PyObject *m, PyObject *a) { CALLGRIND_DUMP_STATS; Py_RETURN_NONE; }",
        "static PyObject *call(PyObject *args) {",
        "  /* args: (function, args tuple, kwargs dict or None) */",
        "  PyObject *kw = PyTuple_GET_ITEM(args, 2);",
        "  PyObject *r = PyObject_Call(PyTuple_GET_ITEM(args, 0), PyTuple_GET_ITEM(args, 1),"
        " kw == Py_None ? NULL : kw);",
        '  __asm__ volatile("" ::: "memory");  /* no tail call: the frame must stay on the stack */',
        "  return r;",
        "}",
    ]
    table = []
    for stage in names:
        for parent in [*names, NONE]:
            fn = f"s_{stage}__{parent}"
            lines.append(
                f"__attribute__((noinline)) PyObject *{fn}(PyObject *m, PyObject *a)"
                ' { PyObject *r = call(a); __asm__ volatile("" ::: "memory"); return r; }'
            )
            table.append(f'  {{"{fn}", {fn}, METH_O, NULL}},')
    lines += [
        "static PyMethodDef methods[] = {",
        '  {"zero", zero, METH_NOARGS, NULL},',
        '  {"dump", dump, METH_NOARGS, NULL},',
        *table,
        "  {NULL, NULL, 0, NULL}",
        "};",
        'static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_stagecalls", NULL, -1, methods};',
        "PyMODINIT_FUNC PyInit__stagecalls(void) { return PyModule_Create(&module); }",
    ]
    return "\n".join(lines) + "\n"


def build_extension(folder: Path) -> Any:
    """Compile and import the stage-call extension in ``folder``."""
    source = folder / "_stagecalls.c"
    source.write_text(trampoline_source())
    target = folder / ("_stagecalls" + sysconfig.get_config_var("EXT_SUFFIX"))
    include = sysconfig.get_paths()["include"]
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-fno-optimize-sibling-calls", "-I", include, "-o", str(target),
         str(source)],
        check=True,
    )  # fmt: skip
    sys.path.insert(0, str(folder))
    import _stagecalls  # type: ignore[import-not-found]

    return _stagecalls


class InstructionStages:
    """The ``Stages`` interface of route_profile.py over C calls named per stage (or none: ``--plain``)."""

    def __init__(self, ext: Any, plain: bool) -> None:
        self.ext, self.plain = ext, plain
        self.stack: list[str] = []
        self.calls: dict[str, int] = {}
        self.acks = 0  # since the start, for the driver
        self.reset_at = (0.0, 0.0)

    def reset(self) -> None:
        """Zero callgrind's counts: the measured run begins."""
        self.calls = {}
        self.ext.zero()

    def parent(self) -> str | None:
        """The stage of the innermost wrapped call."""
        return self.stack[-1] if self.stack else None

    def wrap(self, stage: Any, function: Any) -> Any:
        """``function`` called through its stage's C function (counted only, with ``--plain``)."""
        import functools

        ext, stack, calls = self.ext, self.stack, self.calls

        @functools.wraps(function)
        def staged(*args: Any, **kwargs: Any) -> Any:
            name = stage(*args, **kwargs) if callable(stage) else stage
            self.calls[name] = self.calls.get(name, 0) + 1
            if name == "ack":
                self.acks += 1
            if self.plain:
                return function(*args, **kwargs)
            parent = symbol(stack[-1]) if stack else NONE
            stack.append(name)
            try:
                return getattr(ext, f"s_{symbol(name)}__{parent}")((function, args, kwargs or None))
            finally:
                stack.pop()

        del calls
        return staged


def child(args: argparse.Namespace) -> None:
    """Run the route under the stage wrappers (this process is the one under callgrind)."""
    from route_bench import ROUTE, bodies, hub_project, publish
    from route_profile import patched

    from esb.journal.bodies import BodyCodec
    from esb.logging import configure_logging
    from esb.runtime.hub import Hub

    configure_logging("critical", "console")
    Path(args.keep).mkdir(parents=True, exist_ok=True)
    ext = build_extension(Path(args.keep))
    stages = InstructionStages(ext, args.plain)
    total = args.warmup + args.messages
    if args.rabbit:
        from tests.integration.cluster import production_project

        project = production_project(json.loads((Path(args.keep) / "environ.json").read_text()))
        project.settings.data_dir.mkdir(parents=True, exist_ok=True)  # the backlog: published by run()
    else:
        project = hub_project()
        project.settings.data_dir.mkdir(parents=True, exist_ok=True)
        publish(project, bodies(total), "ins")
    encode = BodyCodec.__dict__["encode"]
    BodyCodec.encode = stages.wrap("journal body compression", encode)  # type: ignore[method-assign]
    undo = detail(stages) if args.detail else []
    if args.journal:
        undo += journal_detail(stages)
    try:
        with patched(stages, args.warmup):  # type: ignore[arg-type]
            hub = Hub(project, route_ids=[ROUTE])
            hub.journal.connect()
            worker = hub._worker(project, project.route(ROUTE), 0)
            worker.overlap_batches = False  # one batch at a time, in this thread: the same work every run
            worker._connect_source()
            while stages.acks < total:
                delivery = worker._read(1.0)
                if delivery is None:
                    raise SystemExit(f"the queue ran dry after {stages.acks} of {total} messages")
                worker._handle_ready(delivery, backlog=True)
            ext.dump()
            counted = stages.calls.get("ack", 0)
            worker._shutdown()
            hub.journal.close()
    finally:
        BodyCodec.encode = encode  # type: ignore[method-assign]
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)
    (Path(args.keep) / "counts.json").write_text(json.dumps({"messages": counted, "calls": stages.calls}))


def detail(stages: InstructionStages) -> list[tuple[Any, str, Any]]:
    """Wrap the functions of the ``--detail`` stages; return what to put back."""
    from esb.journal.seen import Seen
    from esb.message import Message
    from esb.runtime import batching
    from esb.runtime.metrics import MeteredJournal
    from esb.runtime.outlet import Outlet
    from esb.runtime.pipeline import Pipeline
    from esb.telemetry import NoopTracer
    from esb.typing import Delivery

    wraps = [
        (Pipeline, "__call__", "pipeline"), (Message, "replace", "message replace"),
        (Outlet, "routed", "outlet routing"), (MeteredJournal, "received_many", "metrics"),
        (MeteredJournal, "settle_many", "metrics"), (NoopTracer, "route", "tracing scope"),
        (batching, "recording", "drop recording"), (Seen, "add", "seen cache"), (Seen, "get", "seen cache"),
        (Seen, "forget", "seen cache"), (Delivery, "ended", "delivery settle"),
    ]  # fmt: skip
    undo = []
    for owner, name, stage in wraps:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        undo.append((owner, name, original))
        setattr(owner, name, stages.wrap(stage, original))
    return undo


def journal_detail(stages: InstructionStages) -> list[tuple[Any, str, Any]]:
    """Wrap the journal's statements (``--journal``): each bulk insert by its table, the id look-up, the
    transaction's begin and commit, the connection's checkout and return, and the Python around them (the
    rows' parameters, the seen cache, business keys, per-minute figures); return what to put back."""
    from sqlalchemy.engine import Connection, Engine

    from esb.journal.bulk import BulkInsert, IdLookup

    def insert_stage(insert: Any, *args: Any, **kwargs: Any) -> str:
        for table in ("messages", "events", "business_keys", "route_minutes"):
            if f"INSERT INTO {table} " in insert.sql or f"INTO {table} (" in insert.sql:
                return {"business_keys": "journal keys", "route_minutes": "journal minutes"}.get(
                    table, f"journal {table}"
                )
        return "journal SQL"

    from esb.journal import batched
    from esb.journal.seen import Seen

    wraps = [
        (BulkInsert, "_converted", "journal parameters"), (Seen, "get", "journal seen cache"),
        (Seen, "add", "journal seen cache"), (Seen, "forget", "journal seen cache"),
        (Seen, "get_many", "journal seen cache"), (Seen, "add_many", "journal seen cache"),
        (Seen, "forget_many", "journal seen cache"),
        (batched, "keys_of", "journal keys of"),
        (batched.BatchedWrites, "_arrival_figures", "journal figures"),
        (batched.BatchedWrites, "_outcome_figures", "journal figures"),
        (BulkInsert, "execute", insert_stage), (BulkInsert, "insert_returning", insert_stage),
        (IdLookup, "__call__", "journal id look-up"), (Connection, "_begin_impl", "journal begin"),
        (Connection, "_commit_impl", "journal commit"), (Engine, "connect", "journal connect"),
        (Connection, "close", "journal connect"),
    ]  # fmt: skip
    undo = []
    for owner, name, stage in wraps:
        original = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if original is None:  # not in the checkout measured (``--code``): its cost stays in its caller's
            continue
        undo.append((owner, name, original))
        setattr(owner, name, stages.wrap(stage, original))
    return undo


def annotate(path: Path, inclusive: bool) -> dict[str, int]:
    """Function -> instructions (self, or inclusive) from a callgrind dump, via callgrind_annotate."""
    out = subprocess.run(
        ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    costs: dict[str, int] = {}
    for line in out.splitlines():
        match = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)(?:\s+\[.*\])?$", line)
        if match and ":" in match.group(2):
            name = match.group(2).split(":", 1)[1].strip()
            costs[name] = costs.get(name, 0) + int(match.group(1).replace(",", ""))
    return costs


def program_total(path: Path) -> int:
    """The dump's total instructions."""
    for line in path.read_text().splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {path}")


def stage_costs(inclusive: dict[str, int]) -> dict[str, int]:
    """Exclusive instructions per stage from the inclusive costs of the ``s_<stage>__<parent>`` calls."""
    names = {symbol(s): s for s in STAGES}
    total: dict[str, int] = dict.fromkeys(STAGES, 0)
    nested: dict[str, int] = dict.fromkeys(STAGES, 0)
    for fn, cost in inclusive.items():
        match = re.fullmatch(r"s_(\w+?)__(\w+)", fn)
        if not match or match.group(1) not in names:
            continue
        stage, parent = names[match.group(1)], match.group(2)
        total[stage] += cost
        if parent != NONE:
            nested[names[parent]] += cost
    return {s: total[s] - nested[s] for s in STAGES if total[s]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the child under callgrind (on throwaway RabbitMQ and PostgreSQL servers with ``--rabbit``);
    return its figures."""
    folder = Path(args.keep or tempfile.mkdtemp(prefix="cpu3-callgrind-"))
    folder.mkdir(parents=True, exist_ok=True)
    if not args.rabbit:
        return run_child(args, folder)
    from route_bench import bodies, publish
    from servers import throwaway_servers

    from tests.integration.cluster import production_environ, production_project

    with throwaway_servers() as (rabbit, pg):
        vhost, database = rabbit.create_vhost("instructions"), pg.create_database("instructions")
        environ = production_environ(folder / "var", vhost, database, ESB_BROKER__HEARTBEAT="0")
        (folder / "environ.json").write_text(json.dumps(environ))
        publish(production_project(environ), bodies(args.warmup + args.messages), "ins")
        return run_child(args, folder)


def run_child(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Run the child under callgrind with its figures in ``folder``; return them."""
    out = folder / "callgrind.out"
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
        "--instr-atstart=no",
        sys.executable, __file__, "--child", "--keep", str(folder),
        "--messages", str(args.messages), "--warmup", str(args.warmup), *(["--plain"] if args.plain else []),
        *(["--detail"] if args.detail else []), *(["--journal"] if args.journal else []),
        *(["--rabbit"] if args.rabbit else []),
    ]  # fmt: skip
    code = str(Path(args.code).resolve()) if args.code else str(ROOT)
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": code, "ESB_INSTRUCTIONS_CODE": code}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dump = next(p for p in sorted(folder.glob("callgrind.out.*")) if not p.name.endswith(".c"))
    counts = json.loads((folder / "counts.json").read_text())
    messages = counts["messages"]
    total = program_total(dump)
    # the frames on the stack when the counts were zeroed show the whole total as their own: left out
    self_costs = {fn: c for fn, c in annotate(dump, inclusive=False).items() if c < 0.9 * total}
    result: dict[str, Any] = {
        "code": env["PYTHONPATH"],
        "messages": messages,
        "plain": args.plain,
        "instructions_per_message": total / messages,
        "top_self": [
            {"function": fn, "per_message": cost / messages}
            for fn, cost in sorted(self_costs.items(), key=lambda kv: -kv[1])[: args.top]
        ],
        "calls_per_message": {k: v / messages for k, v in counts["calls"].items()},
    }
    if not args.plain:
        stages = stage_costs(annotate(dump, inclusive=True))
        result["stages"] = {s: c / messages for s, c in stages.items()}
        result["stage_sum"] = sum(stages.values()) / messages
    return result


def print_result(result: dict[str, Any]) -> None:
    """Print the figures for people."""
    print(f"code: {result['code']}")
    mode = "plain" if result["plain"] else "by stage"
    print(f"{result['messages']} messages after the warm-up, under callgrind ({mode})")
    per_message = result["instructions_per_message"]
    print(f"instructions per message (whole process, measured region): {per_message:,.0f}")
    if "stages" in result:
        print(f"\n{'stage':<44} {'Ir/msg':>12} {'share':>6} {'calls/msg':>9}")
        for stage, cost in result["stages"].items():
            calls = result["calls_per_message"].get(stage, 0.0)
            print(f"{stage:<44} {cost:>12,.0f} {cost / result['stage_sum']:>6.1%} {calls:>9.2f}")
        outside = result["instructions_per_message"] - result["stage_sum"]
        print(f"{'stage sum':<44} {result['stage_sum']:>12,.0f}")
        print(f"{'outside any stage (the driver loop)':<44} {outside:>12,.0f}")
    print(f"\n{'top C functions by self cost':<60} {'Ir/msg':>12}")
    for row in result["top_self"]:
        print(f"{row['function'][:60]:<60} {row['per_message']:>12,.0f}")


def main() -> None:
    """Measure and print (or, with --child, be the measured process)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=400, help="messages counted, after the warm-up")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--plain", action="store_true", help="no stage wrappers: the true total")
    parser.add_argument("--top", type=int, default=25, help="C functions listed by self cost")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", help="folder for the callgrind dumps (default: a new temporary one)")
    parser.add_argument("--detail", action="store_true", help="split the worker loop's own code further")
    parser.add_argument("--journal", action="store_true", help="split the journal SQL stage by statement")
    parser.add_argument("--rabbit", action="store_true", help="RabbitMQ + PostgreSQL, production settings")
    parser.add_argument("--code", help="the checkout whose code is measured (default: this one)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else "", end="")
    if not args.json:
        print_result(result)


if __name__ == "__main__":
    main()
