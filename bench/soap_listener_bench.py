"""The hub's SOAP listener against a bare lxml handler on the same server stack, same run.

    .venv/bin/python bench/soap_listener_bench.py [--seconds 5] [--runs 3] [--clients 2] [--connections 4]
        [--threads 8] [--concurrency 1] [--profile] [--per-thread] [--kinds bare,listener,hub]
        [--base CHECKOUT]

The servers, each in its own process (so each one's CPU is its own):

- **hub**: a real ``Hub`` on a temp project: the CRM's one-way ``SubmitBillingAccount`` listener of
  config/systems.yaml (HTTP basic, capped read, hardened parse, envelope, SOAPAction, schema validation,
  ``unwrap``) and one route taking it to a queue on the embedded transport, with the real journal
  (SQLite, the embedded default) and logging as ``esb run`` configures it (JSON lines, to /dev/null).
  The adapter's contract holds: the 202 goes out only once the route journaled the message and the
  queue has it.
- **bare**: the same waitress server and settings (``adapters.soap.server.make_server``), the same
  threads, the same HTTP basic check (``check_basic``), the same capped read and hardened parse
  (``read_body``, ``esb.xmlsafe.parse_xml``), then 202. Nothing stored.

- **hub-nojournal** (diagnostic, only when asked with ``--kinds``): the hub with the journal's writes
  stubbed out (nothing stored: the 202 no longer means "stored"), to show what the journal costs.
- **listener-inline** (only when asked): the listener with ``listen.inline``: each request acked on
  its own server thread through the inline route's leader/follower turns (``adapters/http/inline.py``),
  no hand-over to another thread. (Before 2026-12-08 a diagnostic that acked in the inbox's ``put``.)
- **hub-inline**, **hub-handover** (only when asked): the hub with ``listen.inline`` set on or off
  (``hub`` takes the option's default): the route's steps, journal and queue write on the server thread
  (concurrent requests share one batch: a group commit), against the hand-over to the route's worker.
  **hub-inline-nogather** (diagnostic): hub-inline whose leaders never yield for the requests on their
  way (``adapters.http.inline`` ``MIN_YIELDS`` = ``MAX_YIELDS`` = 0), to show what gathering is worth.

A kind written ``KIND@base`` is served by the checkout ``--base`` names (``KIND@/path``: by that one), with
its own code, in the same turns: e.g. ``--kinds bare,listener@base,listener --base /work/main-copy``
compares main's listener and this one's in one run.

The load: ``--clients`` processes with ``--connections`` keep-alive sockets each, sending a prepared
request and reading the answer with plain sockets (no HTTP library: its CPU would bound both sides).
Runs alternate (bare, hub, then hub, bare, ...); each window starts after a warm-up second. Printed per
window: requests/s, the server process's CPU (user + system, from /proc) per request, the clients' CPU
per request, the server's context switches per request (all its threads, from /proc), the 1-minute load
average; then the medians and the ratio hub / bare of the medians.
``--profile`` also prints the hub's CPU per request by stage (``soap_profile.py``: thread CPU time of
each stage's functions, medians of the windows); the timers cost the hub about 1 µs per timed call, so
its figures with ``--profile`` are a little lower than without.
``--per-thread`` prints each server's CPU and context switches per request by thread role (waitress's
workers, its I/O loop, the route's reader...; ``thread_stats.py``), medians of the windows.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import soap_profile  # noqa: E402 - bench/ is not a package: its folder is on sys.path
import thread_stats  # noqa: E402

from tests.integration.soap_project import free_port, siebel_account  # noqa: E402

PATH = "/soap/crm"
FIGURES = ("rps", "cpu_us", "client_us", "switches", "load")
KINDS = (
    "bare",
    "listener",
    "listener-inline",
    "hub",
    "hub-nojournal",
    "hub-inline",
    "hub-handover",
    "hub-inline-nogather",
)
USER, PASSWORD = "siebel", "crm-secret"
ROUTE = "bench-crm-billing-accounts-in"
ENVELOPE = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    f"{siebel_account('1-BENCH')}</soapenv:Body></soapenv:Envelope>"
).encode()


def request_bytes(port: int) -> bytes:
    """The whole HTTP request the clients send, again and again on one connection."""
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/xml; charset=utf-8\r\n"
        f'SOAPAction: "urn:esb:crm:SubmitBillingAccount"\r\nAuthorization: Basic {auth}\r\n'
        f"Content-Length: {len(ENVELOPE)}\r\n\r\n"
    )
    return head.encode() + ENVELOPE


# -- the servers (run as: soap_listener_bench.py --serve hub|bare) -----------------------------------
def serve_bare(port: int, threads: int) -> Any:
    """The baseline: the listener's waitress settings, basic auth, capped read, hardened parse, 202."""
    from adapters.http.credentials import check_basic
    from adapters.soap.server import make_server
    from adapters.soap.service import read_body
    from esb.xmlsafe import parse_xml

    users, limit = {USER: PASSWORD}, 1024 * 1024

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if check_basic(environ.get("HTTP_AUTHORIZATION"), users) is None:
            start_response("401 Unauthorized", [("Content-Length", "0")])
            return [b""]
        parse_xml(read_body(environ, limit), max_bytes=limit)
        start_response("202 Accepted", [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", "0")])
        return [b""]

    server = make_server(app, "127.0.0.1", port, threads, limit)
    threading.Thread(target=server.run, name="soap-bare", daemon=True).start()
    return server


def hub_project(
    folder: Path, port: int, threads: int, concurrency: int, inline: bool | None = None
) -> Path:
    """A project: the CRM's SubmitBillingAccount listener and one route from it to an embedded queue
    (``inline``: the listener's ``listen.inline``, its default when None)."""
    (folder / "config").mkdir(parents=True)
    for name in ("transforms", "canonical_model"):
        (folder / name).symlink_to(ROOT / name)
    (folder / "config" / "contracts").symlink_to(ROOT / "config" / "contracts")
    settings = {
        "data_dir": str(folder / "var"),
        "monitoring": {"enabled": False},
        "console": {"enabled": False},
        "runtime": {"watch_project": False},
    }
    listen = {
        "host": "127.0.0.1",
        "port": port,
        "path": PATH,
        "threads": threads,
        "unwrap": True,
        "auth": {"users": [{"username": USER, "password_env": "BENCH_CRM_PASSWORD"}]},
        **({} if inline is None else {"inline": inline}),
    }
    systems = {
        "crm": {
            "name": "CRM",
            "endpoints": {
                "soap_billing_accounts": {
                    "adapter": "soap",
                    "wsdl": "config/contracts/crm/esb-crm.wsdl",
                    "operation": "SubmitBillingAccount",
                    "message_type": "billing_account.submitted",
                    "listen": listen,
                },
                "billing_accounts": {
                    "adapter": "queue",
                    "queue": "bench.crm.billing_accounts",
                    "format": "xml",
                },
            },
        },
        "dlq": {"name": "DLQ", "endpoints": {"all": {"adapter": "queue", "queue": "bench.dlq"}}},
    }
    route = {
        "id": ROUTE,
        "from": "crm.soap_billing_accounts",
        "to": "crm.billing_accounts",
        "concurrency": concurrency,
        "on_error": {"dead_letter": "dlq.all"},
    }
    (folder / "config" / "settings.yaml").write_text(json.dumps(settings))
    (folder / "config" / "systems.yaml").write_text(json.dumps({"systems": systems}))
    (folder / "routes.yaml").write_text(json.dumps({"routes": [route]}))
    return folder


_KEEP: list[Any] = []
STAGES: list[Any] = []  # the hub's stage counters, with --profile
THREADS: list[thread_stats.Snapshot] = []  # the threads' figures when the window opened, --per-thread


def _log_file() -> Any:
    """Where the servers' log lines go: /dev/null, or the file $BENCH_LOG names (never stdout: the
    parent reads the server's answers there)."""
    log = open(os.environ.get("BENCH_LOG", os.devnull), "wb")  # noqa: SIM115 - open for the process's life
    _KEEP.append(log)
    return log


def stub_journal() -> None:
    """Diagnostic only (kind ``hub-nojournal``): the journal's writes return at once, nothing is stored.
    It breaks the adapter's contract (a 202 no longer means "stored"): it shows what the journal costs."""
    from esb.journal.journal import Journal

    Journal.received = lambda self, route, message, **_: True  # type: ignore[method-assign]
    Journal.received_many = lambda self, route, items: [True] * len(items)  # type: ignore[method-assign]
    for name in ("settle_many", "event", "mark_delivered", "business_keys"):
        setattr(Journal, name, lambda *_a, **_k: None)


def serve_hub(port: int, args: argparse.Namespace, folder: Path, inline: bool | None = None) -> Any:
    """The hub on :func:`hub_project`, logging as ``esb run`` does (JSON lines, here to /dev/null)."""
    from esb.logging import configure_logging
    from esb.project import Project
    from esb.runtime.hub import Hub

    os.environ["BENCH_CRM_PASSWORD"] = PASSWORD
    # --production: the broker and journal URLs of the throwaway RabbitMQ and PostgreSQL servers
    environ = {k: v for k, v in os.environ.items() if k in ("ESB_BROKER__URL", "ESB_JOURNAL__URL")}
    if environ:
        logging.getLogger("psycopg").setLevel(logging.ERROR)
    project = Project.load(
        hub_project(folder, port, args.threads, args.concurrency, inline), environ=environ
    )
    configure_logging(project.settings.logging.level, project.settings.logging.format, _log_file())
    if args.profile:
        STAGES.append(soap_profile.install())
    hub = Hub(project)
    hub.start(wait=60)
    return hub


class _AckAtOnce:
    """An inline "route" that acks each request it is handed (``listener-inline``): no journal, so no
    batch to gather."""

    batches = False

    def lead(self, read: Any) -> None:
        """Ack every waiting request."""
        while (delivery := read()) is not None:
            delivery.ack()

    def same(self, other: object) -> bool:
        """Never the same as another."""
        return other is self

    def close(self) -> None:
        """Nothing to close."""


class _Listener:
    """The listener alone: the hub's SOAPSource with a thread that acks each request at once (no route,
    no journal): what the listener itself costs over the bare handler."""

    def __init__(self, port: int, threads: int, data_dir: Path, inline: bool = False) -> None:
        from adapters.soap.config import SOAPEndpoint
        from adapters.soap.source import SOAPSource
        from esb.config.settings import Settings
        from esb.context import AdapterContext
        from esb.logging import configure_logging

        configure_logging("info", "json", _log_file())  # as the hub's settings.yaml has it
        os.environ["BENCH_CRM_PASSWORD"] = PASSWORD
        listen = {
            "port": port,
            "path": PATH,
            "threads": threads,
            "unwrap": True,
            "auth": {"users": [{"username": USER, "password_env": "BENCH_CRM_PASSWORD"}]},
            "inline": inline,
        }
        endpoint = SOAPEndpoint.model_validate(
            {
                "adapter": "soap",
                "wsdl": "config/contracts/crm/esb-crm.wsdl",
                "operation": "SubmitBillingAccount",
                "listen": listen,
            }
        )
        context = AdapterContext(Settings(data_dir=data_dir), ROOT, "crm.soap_billing_accounts")
        self.source = SOAPSource(endpoint, context)
        self.source.connect()
        self.stopping = threading.Event()
        if inline:  # the server threads run the "route" (an ack) themselves, no hand-over
            self.source.run_inline(_AckAtOnce())
        threading.Thread(target=self._route, name="route reader", daemon=True).start()

    def _route(self) -> None:
        while not self.stopping.is_set():
            delivery = self.source.read(0.1)
            if delivery is not None:
                delivery.ack()

    def stop(self) -> None:
        """Stop acking and serving."""
        self.stopping.set()
        self.source.close()


def serve(kind: str, port: int, args: argparse.Namespace) -> None:
    """Run one server, print ``ready`` once it serves, then obey stdin until it closes: ``reset`` starts
    the stage counters (``--profile``), ``report N`` prints them as JSON for N answered requests."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N": expected here
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    with tempfile.TemporaryDirectory(prefix="soap-bench-") as tmp:
        if kind == "bare":
            running = serve_bare(port, args.threads)
        elif kind in ("listener", "listener-inline"):
            running = _Listener(port, args.threads, Path(tmp), inline=kind == "listener-inline")
            if args.profile:
                STAGES.append(soap_profile.install())
        else:
            if kind == "hub-nojournal":
                stub_journal()
            inline = {"hub-inline": True, "hub-handover": False, "hub-inline-nogather": True}.get(kind)
            if kind == "hub-inline-nogather":
                import adapters.http.inline

                adapters.http.inline.MIN_YIELDS = adapters.http.inline.MAX_YIELDS = 0
            running = serve_hub(port, args, Path(tmp), inline)
        print("ready", flush=True)
        for line in sys.stdin:
            command, _, count = line.strip().partition(" ")
            if command == "reset":
                if STAGES:
                    STAGES[0].reset()
                THREADS[:] = [thread_stats.snapshot()] if args.per_thread else []
            elif command == "report":
                found = soap_profile.figures(STAGES[0], int(count)) if STAGES else {}
                threads = (
                    thread_stats.per_role(THREADS[0], thread_stats.snapshot(), int(count)) if THREADS else {}
                )
                print(json.dumps({"stages": found, "threads": threads}), flush=True)
        running.close() if kind == "bare" else running.stop()


def start_server(
    kind: str, args: argparse.Namespace, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int]:
    """Start a server process of ``kind`` (``extra_env``: more environment); return it and its port
    once it serves."""
    port = free_port()
    kind, _, other = kind.partition("@")
    # "listener@base": served by the --base checkout; "listener@/some/checkout": by that one
    root = Path(args.base) if other == "base" else Path(other) if other else ROOT
    proc = subprocess.Popen(
        [
            sys.executable,
            str(root / "bench" / Path(__file__).name),
            "--serve",
            kind,
            "--port",
            str(port),
            "--threads",
            str(args.threads),
            "--concurrency",
            str(args.concurrency),
            "--switch-interval",
            str(args.switch_interval),
            *(["--profile"] if args.profile else []),
            *(["--per-thread"] if args.per_thread and root == ROOT else []),  # another checkout's bench
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, **(extra_env or {}), "PYTHONPATH": str(root)},
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"the {kind} server did not start")
    return proc, port


# -- the load ----------------------------------------------------------------------------------------
def _exchange(sock: socket.socket, request: bytes, buffer: bytearray) -> None:
    """Send one request and read its whole answer (status line, headers, Content-Length bytes)."""
    sock.sendall(request)
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("the server closed the connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 202"):
        raise SystemExit(f"unexpected answer: {head[:200]!r}")
    length = int(head.lower().partition(b"content-length:")[2].split(b"\r\n")[0] or 0)
    while len(rest) < length:
        rest += sock.recv(65536)
    del buffer[:]
    buffer += rest[length:]


def _client(port: int, connections: int, start: float, end: float, out: Any) -> None:
    """One load process: ``connections`` threads, each a keep-alive socket; counts answers in the window."""
    request = request_bytes(port)
    counts = [0] * connections

    def loop(index: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buffer = bytearray()
            while (now := time.time()) < end:
                _exchange(sock, request, buffer)
                if now >= start:
                    counts[index] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(connections)]
    cpu = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((sum(counts), time.process_time() - cpu))


def _server_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _switches(pid: int) -> int:
    """Context switches (voluntary + involuntary) of all the threads of process ``pid``, from /proc."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        total += sum(
            int(line.split()[1])
            for line in text.splitlines()
            if line.endswith(tuple("0123456789")) and "ctxt_switches" in line
        )
    return total


def window(proc: subprocess.Popen[str], port: int, args: argparse.Namespace) -> dict[str, Any]:
    """Load one server for a warm-up second and ``args.seconds``; return its figures."""
    context = mp.get_context("fork")
    queue: Any = context.Queue()
    start = time.time() + 1.0
    end = start + args.seconds
    clients = [
        context.Process(target=_client, args=(port, args.connections, start, end, queue))
        for _ in range(args.clients)
    ]
    for client in clients:
        client.start()
    assert proc.stdin is not None
    assert proc.stdout is not None
    time.sleep(max(0.0, start - time.time()))
    proc.stdin.write("reset\n")
    proc.stdin.flush()
    cpu, switches = _server_cpu(proc.pid), _switches(proc.pid)
    time.sleep(max(0.0, end - time.time()))
    cpu, switches = _server_cpu(proc.pid) - cpu, _switches(proc.pid) - switches
    results = [queue.get() for _ in clients]
    for client in clients:
        client.join()
    answered = sum(r[0] for r in results)
    proc.stdin.write(f"report {answered}\n")
    proc.stdin.flush()
    reported = json.loads(proc.stdout.readline())
    client_cpu = sum(r[1] for r in results)  # includes their warm-up second: an upper bound
    return {
        "rps": answered / args.seconds,
        "cpu_us": cpu / answered * 1e6,
        "client_us": client_cpu / answered * 1e6,
        "switches": switches / answered,
        "load": os.getloadavg()[0],
        # a checkout from before --per-thread (KIND@base) reports its stages alone
        "stages": reported.get("stages", {}) if "threads" in reported else reported,
        "threads": reported.get("threads", {}),
    }


def main() -> None:
    """Alternate the two servers under the same load; print each window, the medians and the ratio."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2, help="load processes")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections per process")
    parser.add_argument("--threads", type=int, default=8, help="server threads (both servers)")
    parser.add_argument("--concurrency", type=int, default=1, help="the hub route's workers")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.0,
        help="sys.setswitchinterval of the server processes, seconds (0: Python's default, 5 ms)",
    )
    parser.add_argument("--profile", action="store_true", help="the hub's CPU per request by stage")
    parser.add_argument(
        "--per-thread",
        action="store_true",
        help="each server's CPU and switches per request by thread role (thread_stats.py)",
    )
    parser.add_argument(
        "--kinds",
        default="bare,listener,hub",
        help="servers to compare, in turns (bare first: the baseline); hub-nojournal: diagnostic only",
    )
    parser.add_argument(
        "--base",
        default=str(ROOT),
        help="another checkout (e.g. main's): a kind written KIND@base is served by its code, in turns",
    )
    parser.add_argument(
        "--production",
        action="store_true",
        help="the hubs on a throwaway RabbitMQ (the route's queue) and PostgreSQL (the journal)",
    )
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args)
        return
    kinds = args.kinds.split(",")
    with contextlib.ExitStack() as stack:
        environs = production_environs(stack, kinds) if args.production else {}
        servers = {kind: start_server(kind, args, environs.get(kind)) for kind in kinds}
        measure(servers, kinds, args)


def production_environs(stack: contextlib.ExitStack, kinds: list[str]) -> dict[str, dict[str, str]]:
    """Throwaway RabbitMQ and PostgreSQL servers (entered on ``stack``), and for each hub kind its own
    vhost and database as ``ESB_BROKER__URL`` / ``ESB_JOURNAL__URL``."""
    from servers import throwaway_servers

    rabbit, pg = stack.enter_context(throwaway_servers())
    out = {}
    for index, kind in enumerate(k for k in kinds if k.startswith("hub")):
        name = f"soapbench{index}"
        out[kind] = {
            "ESB_BROKER__URL": rabbit.create_vhost(name),
            "ESB_JOURNAL__URL": pg.create_database(name),
        }
    return out


def measure(servers: dict[str, Any], kinds: list[str], args: argparse.Namespace) -> None:
    """Alternate the windows of ``servers``, print each and the summary; stop the servers."""
    figures: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    try:
        for run in range(args.runs):
            for kind in kinds if run % 2 == 0 else kinds[::-1]:
                row = window(*servers[kind], args)
                figures[kind].append(row)
                print(
                    f"run {run + 1} {kind:13}  {row['rps']:7.0f} req/s"
                    f" | server CPU {row['cpu_us']:5.0f} µs/req"
                    f" | clients' CPU {row['client_us']:4.0f} µs/req"
                    f" | {row['switches']:4.1f} switches/req | load {row['load']:.1f}",
                    flush=True,
                )
    finally:
        for proc, _ in servers.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(30)
    summary(figures, args)


def summary(figures: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    """Print each server's medians and, against the bare handler, the ratios: of the medians and the
    median of each run's own ratio (both measured in that run)."""
    med = {k: {f: statistics.median(r[f] for r in rows) for f in FIGURES} for k, rows in figures.items()}
    for kind in [k for k in figures if k != "bare"] if args.profile else ():
        if kind in figures:
            rows = figures[kind]
            stages = {
                s: [statistics.median(r["stages"][s][i] for r in rows) for i in (0, 1)]
                for s in rows[0]["stages"]
            }
            print(f"\n{kind}: CPU per request by stage (medians of {args.runs} windows):")
            print(soap_profile.table(stages, med[kind]["cpu_us"], med[kind]["rps"]))
    for kind, rows in figures.items() if args.per_thread else ():
        roles = {name for r in rows for name in r["threads"]}
        merged = {
            name: [statistics.median(r["threads"].get(name, [0.0] * 4)[i] for r in rows) for i in range(4)]
            for name in roles
        }
        print(f"\n{kind}: by thread role (medians of {args.runs} windows):")
        print(thread_stats.table(merged))
    load = f"{args.clients} x {args.connections} connections, {args.threads} threads"
    print(f"\nmedians of {args.runs} runs ({load}):")
    base = med["bare"]
    for kind, figure in med.items():
        line = (
            f"{kind:13} {figure['rps']:7.0f} req/s, {figure['cpu_us']:5.0f} µs server CPU/req,"
            f" {figure['switches']:4.1f} switches/req, load {figure['load']:.1f}"
        )
        if kind != "bare":
            runs = [r["rps"] / b["rps"] for r, b in zip(figures[kind], figures["bare"], strict=True)]
            line += (
                f" | ratio {figure['rps'] / base['rps']:.2f} (median of the runs' own: "
                f"{statistics.median(runs):.2f}; target >= 0.8) | CPU bare/{kind} "
                f"{base['cpu_us'] / figure['cpu_us']:.2f}"
            )
        print(line)


if __name__ == "__main__":
    main()
