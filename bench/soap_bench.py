"""SOAP adapter throughput, each figure against a baseline measured in the same run.

1. Listener: requests/s for the CRM's one-way SubmitBillingAccount (auth, capped read, hardened parse,
   schema validation, hand-over to a route thread that acks at once) against a minimal lxml
   parse-and-respond WSGI handler on the same waitress server settings. Target: ratio >= 0.5.
2. Client: calls/s of the hub's SOAPSink (queryBalance, the reply turned into a JSON-friendly dict)
   against zeep called directly on the same WSDL and server. Target: ratio >= 0.8.
3. WSDL load: zeep Document construction against the pickled-document cache, for a generated large
   contract (950 complex types, 150 operations) and the Billing contract.

The load generators and the Billing simulator run in other processes, so the GIL is not shared.

    .venv/bin/python bench/soap_bench.py [--seconds 3] [--clients 8]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.soap_project import free_port, siebel_account  # noqa: E402

ENVELOPE = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    f"{siebel_account('1-BENCH')}</soapenv:Body></soapenv:Envelope>"
).encode()


HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"urn:esb:crm:SubmitBillingAccount"'}


def _client_process(url: str, seconds: float, threads: int, out: Any) -> None:
    count = [0] * threads

    def loop(index: int) -> None:
        session = requests.Session()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            response = session.post(
                url,
                data=ENVELOPE,
                auth=("siebel", "crm-secret"),
                headers=HEADERS,
            )
            if response.status_code not in (200, 202):
                raise SystemExit(f"unexpected {response.status_code}: {response.text[:300]}")
            count[index] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(sum(count))


def load(url: str, seconds: float, clients: int) -> float:
    """Return requests/s from ``clients`` keep-alive clients split over two processes."""
    queue: Any = mp.get_context("fork").Queue()
    procs = [
        mp.get_context("fork").Process(target=_client_process, args=(url, seconds, clients // 2, queue))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    total = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def baseline_server(threads: int) -> tuple[Any, str]:
    """A minimal lxml parse-and-respond handler on waitress with the listener's settings."""
    from waitress.server import create_server

    from esb.xmlsafe import parse_xml

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        parse_xml(body)
        start_response("202 Accepted", [("Content-Type", "text/xml"), ("Content-Length", "0")])
        return [b""]

    server = create_server(
        app,
        host="127.0.0.1",
        port=0,
        threads=threads,
        ident="esb",
        clear_untrusted_proxy_headers=True,
        channel_timeout=60,
    )
    threading.Thread(target=server.run, daemon=True).start()
    return server, f"http://127.0.0.1:{server.effective_port}/soap/crm"


def hub_listener(threads: int, data_dir: Path) -> tuple[Any, str, threading.Event]:
    """The hub's listener for SubmitBillingAccount with a route thread that acks each delivery at once."""
    from adapters.soap.config import SOAPEndpoint
    from adapters.soap.source import SOAPSource
    from esb.config.settings import Settings
    from esb.context import AdapterContext

    os.environ["BENCH_CRM_PASSWORD"] = "crm-secret"
    endpoint = SOAPEndpoint.model_validate(
        {
            "adapter": "soap",
            "wsdl": "config/contracts/crm/esb-crm.wsdl",
            "operation": "SubmitBillingAccount",
            "listen": {
                "port": free_port(),
                "path": "/soap/crm",
                "threads": threads,
                "unwrap": True,
                "auth": {"users": [{"username": "siebel", "password_env": "BENCH_CRM_PASSWORD"}]},
            },
        }
    )
    source = SOAPSource(
        endpoint, AdapterContext(Settings(data_dir=data_dir), ROOT, "crm.soap_billing_accounts")
    )
    source.connect()
    stop = threading.Event()

    def route() -> None:
        while not stop.is_set():
            delivery = source.read(0.1)
            if delivery is not None:
                delivery.ack()

    threading.Thread(target=route, daemon=True).start()
    return source, source.url, stop


def bench_listener(seconds: float, clients: int, threads: int) -> None:
    """Print listener requests/s against the baseline."""
    server, url = baseline_server(threads)
    base = load(url, seconds, clients)
    server.close()
    with tempfile.TemporaryDirectory() as tmp:
        source, url, stop = hub_listener(threads, Path(tmp))
        ours = load(url, seconds, clients)
        stop.set()
        source.close()
    print(
        f"listener  baseline lxml handler {base:8.0f} req/s | hub listener {ours:8.0f} req/s | "
        f"ratio {ours / base:.2f} (target >= 0.5)"
    )


def bench_client(seconds: float, data_dir: Path) -> None:
    """Print SOAPSink calls/s against zeep called directly."""
    from zeep import Client, Transport

    from adapters.soap.config import SOAPEndpoint
    from adapters.soap.sink import SOAPSink
    from esb.config.settings import Settings
    from esb.context import AdapterContext
    from esb.message import Message

    port = free_port()
    code = (
        "import time; from simulators.billing import BillingSimulator as B; s=B('esb','pw');"
        f"s.add_account('2000123456', balance='9.99'); s.serve(port={port}); time.sleep(3600)"
    )
    sim = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    url = f"http://127.0.0.1:{port}/services/BillingAccount"
    try:
        _wait(url)
        session = requests.Session()
        session.auth = ("esb", "pw")
        direct = Client(
            str(ROOT / "config/contracts/billing/billing.wsdl"), transport=Transport(session=session)
        )
        service = direct.create_service(
            "{http://billing.telecom.example/ws/account/v1}BillingAccountSoap11Binding", url
        )
        base = _rate(lambda: service.queryBalance(accountId="2000123456"), seconds)
        os.environ["BENCH_BILLING_PASSWORD"] = "pw"
        endpoint = SOAPEndpoint.model_validate(
            {
                "adapter": "soap",
                "wsdl": "config/contracts/billing/billing.wsdl",
                "operation": "queryBalance",
                "address": url,
                "auth": {"username": "esb", "password_env": "BENCH_BILLING_PASSWORD"},
            }
        )
        sink = SOAPSink(endpoint, AdapterContext(Settings(data_dir=data_dir), ROOT, "billing.query_balance"))
        sink.connect()
        message = Message({"accountId": "2000123456"})
        ours = _rate(lambda: sink.request(message, 5.0), seconds)
        sink.close()
    finally:
        sim.terminate()
        sim.wait()
    print(
        f"client    zeep direct {base:8.0f} calls/s | hub SOAPSink {ours:8.0f} calls/s | "
        f"ratio {ours / base:.2f} (target >= 0.8)"
    )


def _wait(url: str) -> None:
    for _ in range(100):
        try:
            requests.get(url, timeout=0.2)
            return
        except requests.ConnectionError:
            time.sleep(0.05)


def _rate(call: Any, seconds: float) -> float:
    call()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call()
        count += 1
    return count / (time.perf_counter() - start)


def bench_load(data_dir: Path) -> None:
    """Print WSDL load times: zeep parse against the disk cache."""
    from adapters.soap.wsdl import forget_contracts, load_contract

    big = data_dir / "big" / "big.wsdl"
    big.parent.mkdir()
    big.write_text(_big_wsdl(150, 800), encoding="utf-8")
    for path in (big,):
        cache = data_dir / f"cache-{path.stem}"
        timings = []
        for _ in range(2):  # first: parse + write the cache; second: from the cache (a restart)
            forget_contracts()
            start = time.perf_counter()
            load_contract(path, cache_dir=cache)
            timings.append(time.perf_counter() - start)
        forget_contracts()
        start = time.perf_counter()
        load_contract(path)
        parse = time.perf_counter() - start
        print(
            f"wsdl load {path.name:14} zeep parse {parse * 1000:7.1f} ms | "
            f"from cache {timings[1] * 1000:7.1f} ms"
            f" | speed-up {parse / timings[1]:.1f}x"
        )


def _field_type(i: int, j: int, n_types: int) -> str:
    return f"tns:T{i + 1}" if j == 0 and i + 1 < n_types and i % 5 else "xsd:string"


def _big_wsdl(n_ops: int, n_types: int) -> str:
    ns = "urn:big:v1"
    types = "".join(
        f'<xsd:complexType name="T{i}"><xsd:sequence>'
        + "".join(
            f'<xsd:element name="f{j}" type="{_field_type(i, j, n_types)}" minOccurs="0"/>' for j in range(15)
        )
        + "</xsd:sequence></xsd:complexType>"
        for i in range(n_types)
    )
    elements = "".join(
        f'<xsd:element name="Op{i}Request" type="tns:T{(i * 7) % n_types}"/>'
        f'<xsd:element name="Op{i}Response" type="tns:T{(i * 3) % n_types}"/>'
        for i in range(n_ops)
    )
    messages = "".join(
        f'<wsdl:message name="I{i}"><wsdl:part name="b" element="tns:Op{i}Request"/></wsdl:message>'
        f'<wsdl:message name="O{i}"><wsdl:part name="b" element="tns:Op{i}Response"/></wsdl:message>'
        for i in range(n_ops)
    )
    port_type = "".join(
        f'<wsdl:operation name="Op{i}"><wsdl:input message="tns:I{i}"/>'
        f'<wsdl:output message="tns:O{i}"/></wsdl:operation>'
        for i in range(n_ops)
    )
    binding = "".join(
        f'<wsdl:operation name="Op{i}"><soap:operation soapAction="Op{i}"/><wsdl:input>'
        '<soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/>'
        "</wsdl:output></wsdl:operation>"
        for i in range(n_ops)
    )
    return (
        f'<?xml version="1.0"?><wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
        'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:tns="{ns}" targetNamespace="{ns}"><wsdl:types><xsd:schema targetNamespace="{ns}" '
        f'elementFormDefault="qualified">{types}{elements}</xsd:schema></wsdl:types>{messages}'
        f'<wsdl:portType name="PT">{port_type}</wsdl:portType><wsdl:binding name="B" type="tns:PT">'
        f'<soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>{binding}'
        '</wsdl:binding><wsdl:service name="S"><wsdl:port name="P" binding="tns:B">'
        '<soap:address location="http://127.0.0.1:9/"/></wsdl:port></wsdl:service></wsdl:definitions>'
    )


def main() -> None:
    """Run every measurement."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8, help="server threads (both servers)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_listener(args.seconds, args.clients, args.threads)
        bench_client(args.seconds, Path(tmp))
        bench_load(Path(tmp))


if __name__ == "__main__":
    main()
