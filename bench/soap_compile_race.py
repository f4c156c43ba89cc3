"""Reproduce the SOAP listener's half-compiled schema: valid requests refused as "not declared".

Each round does what the contract test's listener does with its first five requests: a fresh
``SOAPService`` (its validator compiled lazily, on first need), five threads that each parse a
SubmitBillingAccount envelope with ``parse_xml`` and validate its operation element, all at once. A
round fails when any of the five valid requests is refused. ``--parsers N`` adds N threads parsing XML
all the time (what the rest of a hub does while a listener starts: other routes, other listeners).

    PYTHONPATH=. .venv/bin/python bench/soap_compile_race.py [--rounds 1000] [--parsers 0] [--batch 1]
        [--fresh]

``--fresh`` starts each round with libxml2's own entity loader installed, as in a hub that has just
started (see :func:`fresh_loader`): without it the race stops being possible early in the run.
Prints the failed rounds (a valid request refused), the compiled schemas the validators kept that lack
the operation's element (two per round: the answering one and the error reporter; a request is refused
only when both lack it), the compiles beyond two per round (recompiles after a failed self-check, where
the code has one), the first refusal seen, and the CPU (all threads, the noise too) and wall time.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import threading
import time
from pathlib import Path

from lxml import etree

from adapters.soap import schema
from adapters.soap.envelope import split
from adapters.soap.nonces import MemoryNonceStore
from adapters.soap.service import SOAPService
from adapters.soap.wsdl import load_contract
from esb.xmlsafe import parse_xml
from tests.contract.harness_soap import envelope
from tests.integration.soap_project import siebel_account

ROOT = Path(__file__).resolve().parents[1]
CRM = ROOT / "config" / "contracts" / "crm" / "esb-crm.wsdl"
REQUESTS = 5
ELEMENT = "{http://esb.telecom.example/crm/v1}SubmitBillingAccount"
#: libxml2 inside lxml's extension: its process-wide external entity loader, read and reset by --fresh
_LIBXML2 = ctypes.CDLL(etree.__file__)
_LIBXML2.xmlGetExternalEntityLoader.restype = ctypes.c_void_p
_LIBXML2.xmlSetExternalEntityLoader.argtypes = [ctypes.c_void_p]
_DEFAULT_LOADER = _LIBXML2.xmlGetExternalEntityLoader()  # nothing parsed yet: libxml2's own loader


def fresh_loader() -> None:
    """Put back libxml2's own entity loader, as in a process that has not yet parsed XML concurrently.

    lxml swaps the process-wide loader around every parse and compile and puts back what it found, so
    concurrent parses can leave lxml's loader installed for good; from then on the race cannot happen
    in this process. Each round starts from the state of a freshly started hub.
    """
    _LIBXML2.xmlSetExternalEntityLoader(_DEFAULT_LOADER)


def lacks(compiled: etree.XMLSchema, qname: str) -> bool:
    """True when ``compiled`` does not declare the element ``qname`` (libxml2's cvc-elt.1): the check of
    ``schema.undeclared``, repeated here so that the script also runs on trees without it (main)."""
    if compiled.validate(etree.Element(qname)):
        return False
    return any(e.type == etree.ErrorTypes.SCHEMAV_CVC_ELT_1 for e in compiled.error_log)


def one_round(contract: object, bodies: list[bytes]) -> tuple[list[str], int]:
    """One listener start: five concurrent first requests; return the refusals (empty when all pass) and
    how many of the validator's two compiled schemas lack the operation's element."""
    service = SOAPService("/soap/crm", contract, MemoryNonceStore())  # type: ignore[arg-type]
    start = threading.Barrier(len(bodies))
    refused: list[str] = []

    def call(body: bytes) -> None:
        start.wait()
        _, _, payload = split(parse_xml(body))
        try:
            errors = service.validator.errors(payload)
        except Exception as exc:  # a ConfigError from the self-check counts as a refusal of the start
            errors = [f"{type(exc).__name__}: {exc}"]
        if errors:
            refused.append(errors[0])

    threads = [threading.Thread(target=call, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    validator = service._validator
    compiled = [validator._compiled, validator._reporter] if validator is not None else []
    return refused, sum(lacks(c, ELEMENT) for c in compiled)


def _batch(accounts: int) -> bytes:
    """A batch of ``accounts`` accounts, what the noise threads parse (without the GIL) again and again."""
    return ("<batch>" + siebel_account("1-BG") * accounts + "</batch>").encode()


def parse_forever(stop: threading.Event, body: bytes) -> None:
    """Parse ``body`` until ``stop`` is set (another part of the hub reading XML)."""
    while not stop.is_set():
        parse_xml(body)


def main() -> None:
    """Run the rounds and print the failure count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--parsers", type=int, default=0, help="threads parsing XML all the time")
    parser.add_argument("--batch", type=int, default=1, help="accounts per document the noise parses")
    parser.add_argument("--fresh", action="store_true", help="each round from a fresh process's loader")
    args = parser.parse_args()
    contract = load_contract(CRM, root=ROOT / "config" / "contracts")
    bodies = [envelope(f"{i:032x}", f"1-ROW{i}") for i in range(REQUESTS)]
    stop = threading.Event()
    noise = [
        threading.Thread(target=parse_forever, args=(stop, _batch(args.batch)), daemon=True)
        for _ in range(args.parsers)
    ]
    for thread in noise:
        thread.start()
    compiles = [0]
    compile_once = schema.RequestValidator._compile

    def counted(self: schema.RequestValidator) -> etree.XMLSchema:
        compiles[0] += 1
        return compile_once(self)

    schema.RequestValidator._compile = counted  # type: ignore[method-assign]
    failed, incomplete, first = 0, 0, ""
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        for _ in range(args.rounds):
            if args.fresh:
                fresh_loader()
            refused, lacking = one_round(contract, bodies)
            incomplete += lacking
            if refused:
                failed += 1
                first = first or refused[0]
    finally:
        stop.set()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"rounds={args.rounds} parsers={args.parsers} batch={args.batch} fresh={args.fresh} "
        f"failed={failed} incomplete_served={incomplete} recompiles={compiles[0] - 2 * args.rounds} "
        f"cpu={cpu:.1f}s wall={wall:.1f}s load={os.getloadavg()[0]:.2f}"
    )
    if first:
        print(f"first refusal: {first}")


if __name__ == "__main__":
    main()
