"""REST listener throughput against a bare handler on the same HTTP server, same run, same clients.

1. Listener: requests/s of ``POST {base}/productOrder`` on the hub's REST listener (basic auth, capped
   read, JSON parse, TMF622 schema validation, the order and its create event written to the resource
   store with its inbox row, 201 with the resource; a route thread drains the inbox and acks at once:
   its orders per second are printed beside, to show it keeps up).
2. Baseline: a bare WSGI handler on a cheroot server with the same threads (the listener's default
   ``listen.threads`` unless ``--threads`` says otherwise), reading the body and answering 201 with it.

The load runs in other processes (the GIL is not shared), ``--clients`` of them, each one keep-alive
connection posting distinct orders, with one of two load generators (``--load``, default both, each
measured on both servers):

- ``raw``: plain sockets sending prepared request bytes (only the order id changes) and reading the
  answer's status line, headers and Content-Length bytes: ~30-60 µs of CPU per request, so the servers
  get the cores. The fair figure: it measures the servers, not the clients.
- ``requests``: a ``requests.Session`` per client (what the bench used first): ~750-850 µs of CPU per
  request, about 60 % of a 2-core machine, so the ratio largely reflects the clients.

Each window opens after a warm-up second and lasts ``--seconds``; answers are counted inside it. Printed
per window: requests/s, this process's CPU (user + system, from ``getrusage``) and context switches per
answered request over the window, the clients' CPU per request, the 1-minute load average. Target:
ratio >= 0.7. ``--tree DIR`` runs the servers from another checkout (``git worktree add --detach``) to
measure a baseline commit with this bench; ``--json`` prints one JSON line per window instead;
``--store N`` only times the store's writes of N accepted orders (one thread, no HTTP);
``--per-thread`` adds each window's CPU and context switches per request by thread role (cheroot's
workers, its I/O loop, the route's reader...; ``thread_stats.py``).

    .venv/bin/python bench/rest_bench.py [--seconds 3] [--clients 4] [--load raw,requests]
        [--connections 1] [--threads N] [--tree DIR] [--json] [--store N] [--per-thread]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import multiprocessing as mp
import os
import random
import resource
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AUTH = ("channel", "bench-secret")
ID_WIDTH = 40
"""Every order id is padded to this width so that a raw request's length never changes."""


def _tree() -> Path:
    """The checkout whose adapters run the servers: ``--tree DIR`` if given, else this one."""
    if "--tree" in sys.argv:
        return Path(sys.argv[sys.argv.index("--tree") + 1]).resolve()
    return ROOT


sys.path.insert(0, str(_tree()))

import orjson  # noqa: E402
import thread_stats  # noqa: E402 - bench/ is not a package: this file's folder is on sys.path

from simulators.channel import tmf_order, to_json  # noqa: E402


# -- the load ----------------------------------------------------------------------------------------
class Gate:
    """How the load processes learn the window: each says it is ready (imports done, orders made), then
    gets (start, end) once all are; each puts (201s in the window, requests sent, its CPU) on ``out``."""

    def __init__(self, context: Any) -> None:
        self.ready: Any = context.Queue()
        self.window: Any = context.Queue()
        self.out: Any = context.Queue()

    def wait(self) -> tuple[float, float]:
        """In a load process: report ready and return the window once it is set."""
        self.ready.put(True)
        start, end = self.window.get()
        return float(start), float(end)


def _orders(worker: str) -> list[bytes]:
    """Fifty distinct order bodies, each with the id placeholder ``@@ID@@`` (quoted) in place of its id."""
    rng = random.Random(worker)
    bodies = []
    for i in range(50):
        order = tmf_order(i, rng)
        order["id"] = "@@ID@@"
        bodies.append(to_json(order))
    return bodies


def _ident(worker: str, n: int) -> bytes:
    """Order ``n`` of client ``worker``, padded to ``ID_WIDTH``: ids never repeat across runs."""
    return f"B{worker}-{n}".rjust(ID_WIDTH, "0").encode()


def _load_requests(url: str, worker: str, gate: Gate, connections: int = 1) -> None:
    """Post distinct orders through a ``requests.Session`` until the window's end; count the 201s in it."""
    import requests

    assert connections == 1, "the requests load has one connection per client process"
    bodies = _orders(worker)
    session = requests.Session()
    start, end = gate.wait()
    done, n = 0, 0
    cpu = time.process_time()
    while (now := time.time()) < end:
        body = bodies[n % len(bodies)].replace(b"@@ID@@", _ident(worker, n))
        n += 1
        answer = session.post(url, data=body, auth=AUTH, headers={"Content-Type": "application/json"})
        done += answer.status_code == 201 and now >= start
    gate.out.put((done, n, time.process_time() - cpu))


def _request_head(url: str, length: int) -> bytes:
    """The request line and headers of a raw POST of ``length`` bytes to ``url``."""
    hostport, _, path = url.removeprefix("http://").partition("/")
    auth = base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode()).decode()
    return (
        f"POST /{path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n"
        f"Authorization: Basic {auth}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _post_raw(url: str, start: float, end: float, worker: str) -> tuple[int, int]:
    """Post distinct orders on one keep-alive socket with prepared bytes until ``end``; return (201s
    after ``start``, requests sent)."""
    bodies = _orders(worker)
    parts = [body.split(b"@@ID@@") for body in bodies]
    heads = [_request_head(url, len(body) - len(b"@@ID@@") + ID_WIDTH) for body in bodies]
    host, port = url.removeprefix("http://").split("/", 1)[0].rsplit(":", 1)
    done, n = 0, 0
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        while (now := time.time()) < end:
            k = n % len(bodies)
            sock.sendall(heads[k] + parts[k][0] + _ident(worker, n) + parts[k][1])
            n += 1
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise SystemExit("the server closed the connection")
                buffer += chunk
            head, _, rest = buffer.partition(b"\r\n\r\n")
            length = int(head.lower().partition(b"content-length:")[2].split(b"\r\n")[0])
            while len(rest) < length:
                rest += sock.recv(65536)
            buffer = rest[length:]
            done += head.startswith(b"HTTP/1.1 201") and now >= start
    return done, n


def _load_raw(url: str, worker: str, gate: Gate, connections: int = 1) -> None:
    """``connections`` threads, each posting on its own keep-alive socket (``_post_raw``)."""
    results: list[tuple[int, int]] = []
    start, end = gate.wait()
    cpu = time.process_time()
    threads = [
        threading.Thread(target=lambda i=i: results.append(_post_raw(url, start, end, f"{worker}-{i}")))
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gate.out.put((sum(r[0] for r in results), sum(r[1] for r in results), time.process_time() - cpu))


LOADS: dict[str, Callable[..., None]] = {"raw": _load_raw, "requests": _load_requests}


def measure(
    url: str,
    load: str,
    seconds: float,
    clients: int,
    connections: int = 1,
    warmup: float = 1.0,
    routed: Callable[[], int] | None = None,
    per_thread: bool = False,
) -> dict[str, Any]:
    """Load ``url`` with ``clients`` processes of generator ``load`` (``connections`` each, raw only)
    for ``warmup`` + ``seconds`` once all are started; return requests/s answered 201 in the window, this
    process's CPU (µs) and context switches per answered request over the window, the clients' CPU per
    request sent (µs), the load average and, given ``routed`` (the route's count), the orders the route
    took per second in the window (the listener answers before its route takes the order); with
    ``per_thread``, also the CPU and switches per request of each thread role (``thread_stats.py``)."""
    spawn = mp.get_context("spawn")  # never fork a process that runs server threads
    gate = Gate(spawn)
    run = f"{time.monotonic_ns()}-{url.rsplit(':', 1)[-1].split('/')[0]}"
    procs = [
        spawn.Process(target=LOADS[load], args=(url, f"{run}-{i}", gate, connections)) for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:  # a busy machine can take seconds to start them: the window waits for all
        gate.ready.get()
    start = time.time() + warmup
    end = start + seconds
    for _ in procs:
        gate.window.put((start, end))
    time.sleep(max(0.0, start - time.time()))
    before = resource.getrusage(resource.RUSAGE_SELF)
    threads = thread_stats.snapshot() if per_thread else {}
    taken = routed() if routed is not None else 0
    time.sleep(max(0.0, end - time.time()))
    after = resource.getrusage(resource.RUSAGE_SELF)
    threads_after = thread_stats.snapshot() if per_thread else {}
    taken = (routed() - taken) if routed is not None else 0
    results = [gate.out.get() for _ in procs]
    for proc in procs:
        proc.join()
    answered = max(1, sum(r[0] for r in results))
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e6
    switches = after.ru_nvcsw + after.ru_nivcsw - before.ru_nvcsw - before.ru_nivcsw
    return {
        "rps": answered / seconds,
        "cpu_us": cpu / answered,
        "cs": switches / answered,
        "client_us": sum(r[2] for r in results) / max(1, sum(r[1] for r in results)) * 1e6,
        "load_avg": os.getloadavg()[0],
        "routed_ps": taken / seconds,
        **({"threads": thread_stats.per_role(threads, threads_after, answered)} if per_thread else {}),
    }


# -- the servers -------------------------------------------------------------------------------------
def bare_server(threads: int, server_class: str = "listener") -> tuple[Any, str]:
    """A cheroot server whose handler reads the body and answers 201 with it: the listener's own server
    class (``listener``: the tree's ``ListenerServer``, same reader, gateway and linger) or cheroot's
    plain ``wsgi.Server`` (``cheroot``, what the bare handler ran on before 2026-12-07 17:00)."""
    from cheroot import wsgi

    from adapters.rest.gateway import ListenerServer

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(
            "201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    kind = ListenerServer if server_class == "listener" else wsgi.Server
    server = kind(("127.0.0.1", 0), app, numthreads=threads, server_name="esb", timeout=30)
    server.prepare()
    threading.Thread(target=server.serve, name="rest-bare", daemon=True).start()
    return server, f"http://127.0.0.1:{server.bind_addr[1]}/productOrder"


def listener(data_dir: Path, threads: int) -> tuple[Any, str, Callable[[], int]]:
    """The hub's REST listener for channel.rest_orders, read by a thread that acks at once; returns it,
    its URL and how many orders the route has taken so far."""
    from adapters.rest.config import RESTEndpoint
    from adapters.rest.source import RESTSource
    from esb.config.settings import Settings
    from esb.context import AdapterContext

    os.environ["BENCH_REST_PASSWORD"] = AUTH[1]
    endpoint = RESTEndpoint.model_validate(
        {"adapter": "rest", "listen": {"port": 0, "threads": threads,
         "auth": {"users": [{"username": AUTH[0], "password_env": "BENCH_REST_PASSWORD"}]}}}
    )  # fmt: skip
    tree = _tree()
    source = RESTSource(endpoint, AdapterContext(Settings(data_dir=data_dir), tree, "channel.rest_orders"))
    source.connect()

    taken = [0]

    def route() -> None:
        while source.server is not None:
            delivery = source.read(0.1)
            if delivery is not None:
                delivery.ack()
                taken[0] += 1

    threading.Thread(target=route, name="route reader", daemon=True).start()
    return source, f"{source.url}/productOrder", lambda: taken[0]


def store_writes(orders: int) -> dict[str, float]:
    """CPU (this thread) and wall time per order of the store's writes for an accepted order, in one
    thread, no HTTP: ``create`` with the inbox row and the batched settling where the tree has the
    durable inbox, ``create`` (and ``publish`` when an event is held) where it has not, else the earlier
    ``reserve`` + ``confirm``."""
    from adapters.rest.events import CREATE, make_event
    from adapters.rest.store import ResourceStore

    folder = tempfile.TemporaryDirectory(prefix="esb-rest-bench-")  # removed at the end (N orders' bytes)
    store = ResourceStore(Path(folder.name) / "rest.db").open()
    docs = [orjson.loads(to_json(tmf_order(i, random.Random(i)))) for i in range(50)]
    run = time.monotonic_ns()
    done: list[Any] = []
    cpu, wall = time.thread_time(), time.perf_counter()
    for n in range(orders):
        ident = f"S{run}-{n}"
        doc = {**docs[n % len(docs)], "id": ident}
        event = make_event("productOrder", CREATE, doc, None)
        if hasattr(store, "claim"):  # the durable inbox: the message's bytes and headers are stored too,
            # claimed by this process; the route's deletes are batched (64 per transaction)
            from adapters.rest.store import InboxRow

            data, wire, now = orjson.dumps(doc), orjson.dumps({"tmf-id": ident}).decode(), time.time()
            store.create("productOrder", ident, data, event, None, data, wire, ("bench", now + 30), now)
            done.append(InboxRow("productOrder", ident, event["eventId"], data, wire, None, now, 1))
            if len(done) == 64:
                store.settle_inbox(done, "bench")
                done = []
        elif hasattr(store, "create"):
            if store.create("productOrder", ident, orjson.dumps(doc), event, None):
                store.publish(event["eventId"])
        else:
            store.reserve("productOrder", ident, doc)
            store.confirm("productOrder", ident, event, None)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    store.close()
    folder.cleanup()
    return {"store_cpu_us": cpu / orders * 1e6, "store_wall_us": wall / orders * 1e6}


def _default_threads() -> int:
    """The listener's default ``listen.threads``: both servers run with it unless told otherwise."""
    from adapters.rest.config import ListenOptions

    return int(ListenOptions.model_fields["threads"].default)


def main() -> None:
    """Measure both servers under each load and print the ratios."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4, help="load processes, one connection each")
    parser.add_argument("--load", default="raw,requests", help="load generators: raw, requests or both")
    parser.add_argument("--connections", type=int, default=1, help="keep-alive connections per raw client")
    parser.add_argument(
        "--threads", type=int, default=_default_threads(),
        help="server threads of both servers; default: the listener's own default (listen.threads)",
    )  # fmt: skip
    parser.add_argument(
        "--bare", choices=("listener", "cheroot"), default="listener",
        help="the bare handler's server class: the listener's (default: the same server) or cheroot's own",
    )  # fmt: skip
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose adapters are measured")
    parser.add_argument("--json", action="store_true", help="one JSON line per window")
    parser.add_argument("--store", type=int, default=0, help="only time the store's writes of N orders")
    parser.add_argument(
        "--per-thread", action="store_true",
        help="each server's CPU and switches per request by thread role (thread_stats.py)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.store:
        figures = store_writes(args.store)
        cpu, wall = figures["store_cpu_us"], figures["store_wall_us"]
        text = f"store writes per order: {cpu:.1f} µs CPU, {wall:.1f} µs wall"
        print(json.dumps({"tree": str(args.tree), **figures}) if args.json else text)
        return
    folder = tempfile.TemporaryDirectory(prefix="esb-rest-bench-")  # the listener's store: removed at the end
    bare, bare_url = bare_server(args.threads, args.bare)
    source, url, routed = listener(Path(folder.name), args.threads)
    gc.freeze()  # what the start built is left out of later collections, as ``esb run`` does (esb/startup.py)
    rows: list[dict[str, Any]] = []
    try:
        for load in args.load.split(","):
            connections = args.connections if load == "raw" else 1
            per_thread = args.per_thread
            base = measure(bare_url, load, args.seconds, args.clients, connections, per_thread=per_thread)
            rest = measure(
                url, load, args.seconds, args.clients, connections, routed=routed, per_thread=per_thread
            )
            rows += [{"load": load, "server": "bare", **base}, {"load": load, "server": "listener", **rest}]
    finally:
        source.close()
        bare.stop()
        folder.cleanup()
    for row in rows:
        if args.json:
            tags = {"tree": str(args.tree), "bare": args.bare, "threads": args.threads}
            print(json.dumps({**tags, **row}), flush=True)
            continue
        print(
            f"{row['load']:8} {row['server']:8} {row['rps']:7.0f} req/s  {row['cpu_us']:5.0f} µs CPU/req  "
            f"{row['cs']:4.1f} cs/req | clients {row['client_us']:4.0f} µs/req | load {row['load_avg']:.1f}"
            + (f" | routed {row['routed_ps']:.0f}/s" if row["server"] == "listener" else "")
        )
        if "threads" in row:
            print(thread_stats.table(row["threads"]))
    if not args.json:
        for i in range(0, len(rows), 2):
            ratio = rows[i + 1]["rps"] / rows[i]["rps"]
            cpu = rows[i + 1]["cpu_us"] / rows[i]["cpu_us"]
            verdict = "OK" if ratio >= 0.7 else "BELOW"
            print(
                f"{rows[i]['load']:8} ratio {ratio:.2f} (target >= 0.7: {verdict}), CPU/order {cpu:.2f}x bare"
            )


if __name__ == "__main__":
    main()
