"""Where the SOAP listener's CPU goes, per request: the hub process's thread CPU time by stage.

Used by ``soap_listener_bench.py --profile``: the server process wraps the functions of each stage with
route_profile.py's exclusive timers (thread CPU time, ``time.thread_time``, and wall time; a nested timed
call counts in its own stage, not its caller's) and reports the figures per answered request. What no
stage covers (waitress parsing HTTP and writing answers, its I/O loop, the route worker's loop, thread
switches) is the process's CPU (from /proc, all threads) minus the stages' sum.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from route_profile import Stages  # bench/ is not a package: its folder is on sys.path

#: (stage, owner given as "module:Class" or "module", attribute names) in the order they are printed.
STAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("listener: WSGI app, dispatch", "adapters.soap.server:Listener", ("app",)),
    ("listener: lockout, basic auth", "adapters.soap.service:SOAPService",
     ("check_lockout", "authenticate_basic")),
    ("listener: capped read + hardened parse", "adapters.soap.service:SOAPService", ("_parse",)),
    ("listener: envelope, SOAPAction, checks", "adapters.soap.service:SOAPService", ("_handle", "handle")),
    ("listener: schema validation", "adapters.soap.schema:RequestValidator", ("errors",)),
    ("listener: message built", "adapters.soap.service:SOAPService", ("_message",)),
    ("listener: hand-over and wait", "adapters.soap.service:SOAPService", ("_exchange",)),
    ("worker: inbox read", "adapters.soap.source:SOAPSource", ("read",)),
    ("worker: loop, batching, steps", "esb.runtime.worker:RouteWorker", ("_handle_ready", "handle")),
    ("journal: ingress", "esb.journal.journal:Journal", ("received",)),
    ("journal: ingress", "esb.journal.batched:BatchedWrites", ("received_many",)),
    ("journal: outcome", "esb.journal.journal:Journal", ("event", "mark_delivered")),
    ("journal: outcome", "esb.journal.batched:BatchedWrites", ("settle_many",)),
    ("queue write (embedded transport)", "esb.runtime.outlet:Outlet", ("write_many", "write", "deliver_all")),
    ("ack (wakes the server thread)", "esb.typing:Delivery", ("ack",)),
    ("logging", "structlog._native", ()),
)  # fmt: skip


def _owner(spec: str) -> Any:
    import importlib

    module, _, name = spec.partition(":")
    found = importlib.import_module(module)
    return getattr(found, name) if name else found


def install() -> Stages:
    """Wrap every stage's functions (for the process's life); return the counters."""
    import structlog

    stages = Stages()
    for stage, spec, names in STAGES:
        owner = _owner(spec)
        for name in names:
            setattr(owner, name, stages.wrap(stage, owner.__dict__[name]))
    # log lines: the bound logger's methods are made per level; wrap the processors chain's entry point
    config = structlog.get_config()
    config["processors"] = [_timed_processor(stages, p) for p in config["processors"]]
    structlog.configure(**config)
    return stages


def _timed_processor(stages: Stages, processor: Any) -> Any:
    return stages.wrap("logging", processor)


def figures(stages: Stages, answered: int) -> dict[str, list[float]]:
    """Per answered request, by stage: [CPU µs, wall µs] (wall: the time its calls took, waits included)."""
    per = 1e6 / max(answered, 1)
    return {
        stage: [stages.cpu.get(stage, 0.0) * per, stages.wall.get(stage, 0.0) * per] for stage, _, _ in STAGES
    }


def table(by_stage: dict[str, list[float]], process_us: float, rps: float) -> str:
    """The figures for people: stage, CPU µs per request and its share of the process's CPU, wall µs per
    request. The route worker is one thread: its stages' wall times add up to at most 1e6 / rps."""
    lines = [f"{'stage':44} {'CPU µs/req':>10} {'share':>6} {'wall µs/req':>11}"]
    for stage, (cpu, wall) in by_stage.items():
        lines.append(f"{stage:44} {cpu:10.1f} {cpu / process_us:6.1%} {wall:11.1f}")
    rest = process_us - sum(cpu for cpu, _ in by_stage.values())
    lines.append(f"{'waitress HTTP + I/O loop, switches, other':44} {rest:10.1f} {rest / process_us:6.1%}")
    lines.append(f"{'server process CPU per request (all threads)':44} {process_us:10.1f}")
    worker = sum(wall for stage, (_, wall) in by_stage.items() if not stage.startswith("listener"))
    if by_stage.get("journal: ingress", [0.0])[0]:  # a route worker ran (the hub), not an acking thread
        lines.append(
            f"{'route worker wall per request (its stages)':44} {worker:10.1f}"
            f" of {1e6 / rps:.0f} µs between two answers"
        )
    return "\n".join(lines)
