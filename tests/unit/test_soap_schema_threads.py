"""Request validation on many server threads at once (adapters/soap/schema.py): every answer, and every
invalid request's list of errors, is what the same validation gives alone on one thread."""

from __future__ import annotations

import threading
from pathlib import Path

from lxml import etree

from adapters.soap.schema import RequestValidator
from adapters.soap.wsdl import load_contract
from tests.integration.soap_project import siebel_account

ROOT = Path(__file__).resolve().parents[2]
CRM = ROOT / "config" / "contracts" / "crm" / "esb-crm.wsdl"


def _requests() -> list[etree._Element]:
    good = siebel_account("1-OK")
    unknown = siebel_account("1-UNK").replace("<Account>", "<Account><Colour>red</Colour>")
    other = siebel_account("1-OTH").replace("sbl:SiebelMessage", "sbl:Other")
    currency = "<Currency_spcCode>CNY</Currency_spcCode>"
    twice = siebel_account("1-TWO").replace(currency, currency * 2)
    return [etree.fromstring(text.encode()) for text in (good, unknown, other, twice)] * 3


def test_concurrent_validations_answer_as_one_alone() -> None:
    """Eight threads validating valid and invalid requests together get the errors one thread gets."""
    contract = load_contract(CRM, root=ROOT / "config" / "contracts")
    validator = RequestValidator(contract.files, contract.root)
    requests = _requests()
    alone = [validator.errors(r) for r in requests]
    assert alone[0] == []
    assert all(alone[i] for i in (1, 2, 3))  # the invalid ones have errors to compare
    mismatches: list[tuple[int, list[str]]] = []
    start = threading.Barrier(8)

    def validate() -> None:
        start.wait()
        for _ in range(150):
            for index, request in enumerate(requests):
                found = validator.errors(request)
                if found != alone[index]:
                    mismatches.append((index, found))

    threads = [threading.Thread(target=validate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []
