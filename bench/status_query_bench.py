"""Status query latency (issue 15, flow 3): p50/p95/p99 of the hotline's QueryOrderStatus through the hub.

The hub (the real ``Hub``: SOAP listener, route worker, journal, step ``process_status``) runs on a temp
project with the repo's contracts and mappings, over a store holding N order_to_activation instances
(80% waiting in their components, 20% completed, three components each), written straight into the
engine's tables. A client in another process (so the GIL is not shared) sends SOAP 1.1 requests with
HTTP basic over one keep-alive connection per thread: a third by order number, a third by a
component's MSISDN, a third for orders that do not exist. The same client then asks a bare lxml SOAP
handler (parse the request, answer a fixed QueryOrderStatusResult) on a waitress server with the
listener's settings, in the same run: the floor of HTTP + SOAP on this machine. The query alone
(:func:`esb.process.engine.query.order_status` called in the bench's process) shows its share.

Target: p99 < 50 ms through the hub.

    .venv/bin/python bench/status_query_bench.py [--instances 10000 100000] [--requests 2000] [--threads 1 4]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.soap_project import free_port  # noqa: E402

NS = "http://esb.telecom.example/hotline/v1"
HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"urn:esb:hotline:QueryOrderStatus"'}
PRODUCTS = ("好E家 手机成员", "300M光宽带", "天翼高清")


def envelope(key: str, value: str) -> bytes:
    """A SOAP 1.1 QueryOrderStatus request asking by ``key`` (orderId or msisdn)."""
    return (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        f'<h:QueryOrderStatus xmlns:h="{NS}"><h:{key}>{value}</h:{key}></h:QueryOrderStatus>'
        "</soapenv:Body></soapenv:Envelope>"
    ).encode()


def order_id(n: int) -> str:
    """The order number of instance ``n``."""
    return f"PO-BENCH-{n:07d}"


def msisdn(n: int) -> str:
    """The MSISDN of instance ``n``'s mobile component."""
    return f"133{n:08d}"


def seed(url: str, count: int) -> float:
    """Write ``count`` instances with their keys and branches; return the seconds it took."""
    from esb.config.yamlpos import load_yaml
    from esb.message import utcnow
    from esb.process.definition import Process
    from esb.process.engine import ProcessStore
    from esb.process.engine.tables import process_branches, process_instances, process_keys
    from esb.process.steps import ForeachStep

    definition = Process.model_validate(load_yaml(ROOT / "processes/order_to_activation.yaml").data)
    top = [s.name for s in definition.steps]
    fork = next(s for s in definition.steps if isinstance(s, ForeachStep))
    inner = [s.name for s in fork.foreach.steps]
    start = time.perf_counter()
    now = utcnow()
    with ProcessStore(url) as store, store.engine.begin() as conn:
        digest = store.pin(conn, definition)
        for first in range(0, count, 5000):
            instances, keys, branches = [], [], []
            for n in range(first, min(first + 5000, count)):
                done = n % 5 == 4
                components = [
                    {
                        "id": f"{order_id(n)}-{i + 1}",
                        "productOrderItem": {"productOffering": {"name": PRODUCTS[i]}},
                        **({"reservation": {"msisdn": msisdn(n)}} if i == 0 else {}),
                    }
                    for i in range(3)
                ]
                iid = f"bench-{n:07d}"
                instances.append(
                    {
                        "id": iid,
                        "process": definition.process,
                        "definition_hash": digest,
                        "trigger_id": f"trigger-{n}",
                        "state": "completed" if done else "inProgress",
                        "status": "completed" if done else "running",
                        "position": len(top) if done else top.index(fork.name),
                        "attempt": 1,
                        "data": {"id": order_id(n), "components": components},
                        "error": None,
                        "wake_at": None,
                        "lease_owner": None,
                        "lease_until": None,
                        "fence": 1,
                        "partial": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                keys.append(
                    {
                        "process": definition.process,
                        "name": "order_id",
                        "value": order_id(n),
                        "instance_id": iid,
                    }
                )
                keys.append(
                    {"process": definition.process, "name": "msisdn", "value": msisdn(n), "instance_id": iid}
                )
                for i, item in enumerate(components):
                    branches.append(
                        {
                            "instance_id": iid,
                            "path": f"{fork.name}[{item['id']}]",
                            "parent": fork.name,
                            "idx": i,
                            "item_key": item["id"],
                            "item": item,
                            "position": len(inner) if done else inner.index("activation_result"),
                            "attempt": 1,
                            "status": "done" if done else "running",
                            "state": "completed" if done else "inProgress",
                            "wake_at": None,
                            "error": None,
                        }
                    )
            conn.execute(process_instances.insert(), instances)
            conn.execute(process_keys.insert(), keys)
            conn.execute(process_branches.insert(), branches)
    return time.perf_counter() - start


def _client(url: str, bodies: list[bytes], threads: int, out: Any) -> None:
    """Send ``bodies`` split over ``threads`` keep-alive clients; put every latency (seconds) on ``out``."""
    latencies: list[float] = []
    lock = threading.Lock()

    def loop(part: list[bytes]) -> None:
        session = requests.Session()
        mine = []
        for body in part:
            began = time.perf_counter()
            response = session.post(url, data=body, auth=("hotline", "hotline-secret"), headers=HEADERS)
            mine.append(time.perf_counter() - began)
            if response.status_code != 200:
                raise SystemExit(f"unexpected {response.status_code}: {response.text[:300]}")
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=loop, args=(bodies[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(latencies)


def measure(url: str, bodies: list[bytes], threads: int) -> list[float]:
    """Latencies of ``bodies`` sent from another process (after a warm-up of 100 requests)."""
    ctx = mp.get_context("fork")
    for batch in (bodies[:100], bodies):
        queue: Any = ctx.Queue()
        proc = ctx.Process(target=_client, args=(url, batch, threads, queue))
        proc.start()
        latencies: list[float] = queue.get()
        proc.join()
    return latencies


def requests_mix(count: int, instances: int, seed_value: int = 7) -> list[bytes]:
    """A third by order number, a third by MSISDN, a third for orders that do not exist."""
    rng = random.Random(seed_value)
    bodies = []
    for i in range(count):
        n = rng.randrange(instances)
        kind = i % 3
        if kind == 0:
            bodies.append(envelope("orderId", order_id(n)))
        elif kind == 1:
            bodies.append(envelope("msisdn", msisdn(n)))
        else:
            bodies.append(envelope("orderId", f"PO-NONE-{n}"))
    return bodies


def query_alone(url: str, count: int, instances: int) -> list[float]:
    """Latencies of :func:`order_status` called in this process on the same mix (no HTTP, no route)."""
    from esb.process.engine import ProcessStore
    from esb.process.engine.query import order_status

    rng = random.Random(7)
    asks = []
    for i in range(count):
        n = rng.randrange(instances)
        asks.append([("order_id", order_id(n)), ("msisdn", msisdn(n)), ("order_id", f"PO-NONE-{n}")][i % 3])
    latencies = []
    with ProcessStore(url, pool_size=2) as store:
        for key, value in asks[:100] + asks:
            began = time.perf_counter()
            order_status(store, "order_to_activation", key, value)
            latencies.append(time.perf_counter() - began)
    return latencies[100:]


def baseline_server(threads: int) -> tuple[Any, str]:
    """A bare lxml SOAP handler: parse the request, answer a fixed QueryOrderStatusResult."""
    from lxml import etree
    from waitress.server import create_server

    from esb.xmlsafe import parse_xml

    soap = "http://schemas.xmlsoap.org/soap/envelope/"

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        parse_xml(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        env = etree.Element(f"{{{soap}}}Envelope", nsmap={"soapenv": soap})
        result = etree.SubElement(etree.SubElement(env, f"{{{soap}}}Body"), f"{{{NS}}}QueryOrderStatusResult")
        etree.SubElement(result, f"{{{NS}}}found").text = "false"
        data = etree.tostring(env, xml_declaration=True, encoding="UTF-8")
        start_response(
            "200 OK", [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(data)))]
        )
        return [data]

    server = create_server(
        app, host="127.0.0.1", port=0, threads=threads, ident="esb", clear_untrusted_proxy_headers=True
    )
    threading.Thread(target=server.run, daemon=True).start()
    return server, f"http://127.0.0.1:{server.effective_port}/soap/hotline"


def percentiles(latencies: list[float]) -> str:
    """p50 / p95 / p99 / max in milliseconds."""
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return (
        f"p50 {cuts[49] * 1000:6.2f} ms | p95 {cuts[94] * 1000:6.2f} ms | p99 {cuts[98] * 1000:6.2f} ms | "
        f"max {max(latencies) * 1000:6.1f} ms"
    )


def bench(instances: int, count: int, threads: list[int]) -> None:
    """Seed ``instances``, start the hub, measure the hub and the baseline at each thread count."""
    from esb.project import Project
    from esb.runtime.hub import Hub
    from tests.integration.test_status_query import make_project

    os.environ["T_CRM_PW"] = "crm-secret"
    os.environ["T_HOT_PW"] = "hotline-secret"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/journal.db"
        took = seed(url, instances)
        size = Path(f"{tmp}/journal.db").stat().st_size / 1e6
        print(f"{instances:,} instances seeded in {took:.1f} s (journal.db {size:.0f} MB)")
        alone = query_alone(url, count, instances)
        print(f"  query alone (order_status, in process), {len(alone)} queries: {percentiles(alone)}")
        port = free_port()
        project: Project = make_project(Path(tmp) / "project", url, port)
        hub = Hub(project)
        hub.start(wait=30)
        bodies = requests_mix(count, instances)
        try:
            for n in threads:
                ours = measure(f"http://127.0.0.1:{port}/soap/hotline", bodies, n)
                print(f"  hub      {n} client thread(s), {len(ours)} queries: {percentiles(ours)}")
        finally:
            hub.stop(timeout=10)
        server, base_url = baseline_server(8)
        try:
            for n in threads:
                base = measure(base_url, bodies, n)
                print(f"  baseline {n} client thread(s), {len(base)} queries: {percentiles(base)}")
        finally:
            server.close()


def main() -> None:
    """Run the rounds asked for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    logging.disable(logging.INFO)
    from esb.logging import configure_logging

    configure_logging("warning", "console")
    for count in args.instances:
        bench(count, args.requests, args.threads)


if __name__ == "__main__":
    main()
