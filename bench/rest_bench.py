"""REST listener throughput against a bare handler on the same HTTP server, same run, same client.

1. Listener: requests/s of ``POST {base}/productOrder`` on the hub's REST listener (basic auth, capped
   read, JSON parse, TMF622 schema validation, the order reserved in the resource store, the hand-over
   to a route thread that acks at once, the order confirmed and its create event queued, 201 with the
   resource).
2. Baseline: a bare WSGI handler on a cheroot server with the same threads (the listener's default
   ``listen.threads`` unless ``--threads`` says otherwise), reading the body and answering 201 with it.

The load generators run in other processes (the GIL is not shared), each with a keep-alive session,
posting distinct orders. Target: ratio >= 0.7. Beside requests/s it prints this process's CPU (user +
system) and context switches per answered request, steadier than requests/s on a shared machine.

    .venv/bin/python bench/rest_bench.py [--seconds 3] [--clients 4] [--threads N] [--switch-interval 0.005]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulators.channel import tmf_order, to_json  # noqa: E402

AUTH = ("channel", "bench-secret")


def _load(url: str, seconds: float, worker: str, out: Any) -> None:
    """Post distinct orders to ``url`` for ``seconds``; put how many got 201 on ``out``."""
    import requests

    rng = random.Random(worker)
    orders = [tmf_order(i, rng) for i in range(50)]
    session = requests.Session()
    done, n = 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        order = orders[n % len(orders)]
        order["id"] = f"B{worker}-{n}"
        n += 1
        answer = session.post(
            url, data=to_json(order), auth=AUTH, headers={"Content-Type": "application/json"}
        )
        done += answer.status_code == 201
    out.put(done)


def measure(url: str, seconds: float, clients: int) -> tuple[float, float, float]:
    """Requests/s that ``clients`` processes get answered 201 by ``url``, with this process's CPU (user +
    system, µs) and context switches per answered request over the same window."""
    spawn = mp.get_context("spawn")  # never fork a process that runs server threads
    out: Any = spawn.Queue()
    run = f"{time.monotonic_ns()}-{url.rsplit(':', 1)[-1].split('/')[0]}"  # ids never repeat across runs
    procs = [spawn.Process(target=_load, args=(url, seconds, f"{run}-{i}", out)) for i in range(clients)]
    before = resource.getrusage(resource.RUSAGE_SELF)
    for proc in procs:
        proc.start()
    total = sum(out.get() for _ in procs)
    after = resource.getrusage(resource.RUSAGE_SELF)
    for proc in procs:
        proc.join()
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e6
    switches = after.ru_nvcsw + after.ru_nivcsw - before.ru_nvcsw - before.ru_nivcsw
    return total / seconds, cpu / max(total, 1), switches / max(total, 1)


def bare_server(threads: int) -> tuple[Any, str]:
    """A cheroot server whose handler reads the body and answers 201 with it."""
    from cheroot import wsgi

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(
            "201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=threads)
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    return server, f"http://127.0.0.1:{server.bind_addr[1]}/productOrder"


def listener(data_dir: Path, threads: int) -> tuple[Any, str]:
    """The hub's REST listener for channel.rest_orders, read by a thread that acks at once."""
    from adapters.rest.config import RESTEndpoint
    from adapters.rest.source import RESTSource
    from esb.config.settings import Settings
    from esb.context import AdapterContext

    os.environ["BENCH_REST_PASSWORD"] = AUTH[1]
    endpoint = RESTEndpoint.model_validate(
        {"adapter": "rest", "listen": {"port": 0, "threads": threads,
         "auth": {"users": [{"username": AUTH[0], "password_env": "BENCH_REST_PASSWORD"}]}}}
    )  # fmt: skip
    source = RESTSource(endpoint, AdapterContext(Settings(data_dir=data_dir), ROOT, "channel.rest_orders"))
    source.connect()

    def route() -> None:
        while source.server is not None:
            delivery = source.read(0.1)
            if delivery is not None:
                delivery.ack()

    threading.Thread(target=route, daemon=True).start()
    return source, f"{source.url}/productOrder"


def _default_threads() -> int:
    """The listener's default ``listen.threads``: both servers run with it unless told otherwise."""
    from adapters.rest.config import ListenOptions

    return int(ListenOptions.model_fields["threads"].default)


def main() -> None:
    """Measure both and print the ratio."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--threads", type=int, default=_default_threads(),
        help="server threads of both servers; default: the listener's own default (listen.threads)",
    )  # fmt: skip
    parser.add_argument(
        "--switch-interval", type=float, default=None,
        help="sys.setswitchinterval in seconds for this process (both servers); default: Python's 0.005",
    )  # fmt: skip
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    bare, bare_url = bare_server(args.threads)
    source, url = listener(Path(tempfile.mkdtemp(prefix="esb-rest-bench-")), args.threads)
    try:
        measure(bare_url, 0.5, args.clients)  # warm up both
        measure(url, 0.5, args.clients)
        base, base_cpu, base_cs = measure(bare_url, args.seconds, args.clients)
        rest, rest_cpu, rest_cs = measure(url, args.seconds, args.clients)
    finally:
        source.close()
        bare.stop()
    ratio = rest / base
    print(f"bare cheroot handler     {base:8.0f} req/s  {base_cpu:6.0f} µs CPU/req  {base_cs:5.1f} cs/req")
    print(f"REST listener (POST)     {rest:8.0f} req/s  {rest_cpu:6.0f} µs CPU/req  {rest_cs:5.1f} cs/req")
    print(f"ratio                    {ratio:8.2f}  (target >= 0.7: {'OK' if ratio >= 0.7 else 'BELOW'})")


if __name__ == "__main__":
    main()
