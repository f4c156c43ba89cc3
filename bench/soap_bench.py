"""SOAP adapter throughput, each figure against a baseline measured in the same run.

The listener has its own bench, ``soap_listener_bench.py`` (a real route and journal against a bare lxml
handler on the same server stack, with a load generator that is not the bottleneck).

1. Client: calls/s of the hub's SOAPSink (queryBalance, the reply turned into a JSON-friendly dict)
   against zeep called directly on the same WSDL and server. Target: ratio >= 0.8.
2. WSDL load: zeep Document construction against the pickled-document cache, for a generated large
   contract (950 complex types, 150 operations) and the Billing contract.

The Billing simulator runs in another process, so the GIL is not shared.

    .venv/bin/python bench/soap_bench.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.soap_project import free_port  # noqa: E402


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_client(args.seconds, Path(tmp))
        bench_load(Path(tmp))


if __name__ == "__main__":
    main()
