"""``process_status``: put where an order's process stands (by order number or MSISDN) into the message.

The answer of a status query (flow 3 of issue 15): the step reads the request's business keys (``keys``:
name -> JMESPath over the message, the first one with a value is looked up), asks
:func:`esb.process.engine.query.order_status` and writes ``{found, key, value, orders: [...]}`` at
``into``. No such order is an answer (``found: false``). A request naming none of the keys is the
caller's mistake: the message goes on with the request-reply fault headers set (``soap-fault-code:
BadRequest`` and a text saying what was expected), which the SOAP listener answers as a Client fault
(docs/soap.md, "route's own" faults); the mapping after the step still runs, so it must not require the
answer.

The store is the journal's database (``journal.url``), opened on the first message and closed with the
route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from esb.config.language import Expression, Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.exceptions import MappingError
from esb.expressions import Expression as Compiled
from esb.message import Message
from esb.processors.lazy import OpenedOnFirstUse
from esb.registry import did_you_mean

if TYPE_CHECKING:  # the engine imports the project, which imports the step kinds: load it when used
    from esb.process.engine.query import OrderStatus
    from esb.process.engine.store import ProcessStore

#: The request-reply fault headers a route's reply may carry (the SOAP listener answers them as a fault).
FAULT_CODE = "soap-fault-code"
FAULT_STRING = "soap-fault-string"
#: A process name (as esb.process.definition.PROCESS_NAME, not imported here: see TYPE_CHECKING above).
PROCESS_NAME = r"^[a-z][a-z0-9_]*$"
#: The most orders one answer lists (as esb.process.engine.query.MAX_LIMIT).
MAX_LIMIT = 100
#: The fault code of a query that names no business key.
BAD_REQUEST = "BadRequest"


class ProcessStatusSpec(Strict):
    """Look up a process's instances by one of the request's business keys; write their status."""

    process: str = Field(
        pattern=PROCESS_NAME, max_length=64, description="the process whose instances are asked about"
    )
    keys: dict[str, Expression] = Field(
        min_length=1,
        description="business key of the process -> JMESPath over the message giving its value; the first "
        "with a value is looked up (none: a BadRequest fault)",
    )
    into: str = Field(min_length=1, description="the body field that receives {found, key, value, orders}")
    product: Expression | None = Field(
        default=None,
        description="JMESPath over a component's item giving its product (e.g. its offering's name)",
    )
    limit: int = Field(default=5, ge=1, le=MAX_LIMIT, description="the most orders answered, newest first")


class ProcessStatusStep(Strict):
    """A status query answered from the process engine's tables (see ProcessStatusSpec)."""

    process_status: ProcessStatusSpec = Field(description="process, keys, into, product, limit")


class StatusQuery:
    """The processor: the request's key -> the process status answer at ``into`` (or a BadRequest fault)."""

    def __init__(self, spec: ProcessStatusSpec, journal_url: str, where: str) -> None:
        self.spec = spec
        self.journal_url = journal_url
        self.keys = {name: Compiled(text, f"{where}.keys.{name}") for name, text in spec.keys.items()}
        self.product = Compiled(spec.product, f"{where}.product") if spec.product else None
        self._store = OpenedOnFirstUse(self._open_store)

    def __call__(self, message: Message) -> list[Message]:
        """Return the message with the answer at ``into``, or with the fault headers for a bad request."""
        if not isinstance(message.body, dict):
            raise MappingError(
                "process_status", self.spec.into, self.spec.into, "the body must be a JSON object (a query)"
            )
        asked = self._asked(message)
        if asked is None:
            expected = " or ".join(f"{name} ({self.spec.keys[name]})" for name in self.keys)
            return [
                message.replace(
                    headers={
                        **message.headers,
                        FAULT_CODE: BAD_REQUEST,
                        FAULT_STRING: f"the query names no order: expected {expected}, got none of them",
                    }
                )
            ]
        key, value = asked
        from esb.process.engine.query import order_status

        found = order_status(self.store(), self.spec.process, key, value, limit=self.spec.limit)
        body = dict(message.body)
        answer = {"found": bool(found), "key": key, "value": value, "orders": [self._order(o) for o in found]}
        from esb.processors.routing import set_path  # imported when a route runs

        set_path(body, self.spec.into, answer)
        return [message.replace(body=body)]

    def _asked(self, message: Message) -> tuple[str, str] | None:
        """The first key whose expression gives a value (a number is taken as its text)."""
        for name, expression in self.keys.items():
            value = expression.evaluate(message)
            if isinstance(value, str) and value.strip():
                return name, value.strip()
            if isinstance(value, int | float) and not isinstance(value, bool):
                return name, str(value)
        return None

    def _order(self, status: OrderStatus) -> dict[str, Any]:
        """One order of the answer: its fields, each component with its product instead of its item."""
        order = status.as_dict()
        for component in order["components"]:
            item = component.pop("item")
            component["product"] = self.product.search(item) if self.product and item is not None else None
        return order

    def _open_store(self) -> ProcessStore:
        from esb.process.engine.store import ProcessStore

        return ProcessStore(self.journal_url, pool_size=2)

    def store(self) -> ProcessStore:
        """The process store, opened on first use."""
        return self._store.get()

    def close(self) -> None:
        """Close the store, if one was opened; harmless twice."""
        self._store.close()


def build(step: ProcessStatusStep, ctx: BuildContext) -> Processor:
    """Return the status query (its store is opened on the first message)."""
    return StatusQuery(step.process_status, ctx.project.settings.journal.url, ctx.where("process_status"))


def lint(step: ProcessStatusStep, path: PathKey, ctx: LintContext) -> None:
    """The process must exist in processes/, each key must be one of its business keys; expressions parse."""
    spec = step.process_status
    base = (*path, "process_status")
    for name, text in spec.keys.items():
        ctx.check_expression(text, (*base, "keys", name))
    if spec.product:
        ctx.check_expression(spec.product, (*base, "product"))
    from esb.process.loader import load_processes

    catalog = load_processes(ctx.project.root)
    if spec.process not in catalog.names():
        ctx.add(
            (*base, "process"),
            f"unknown process {spec.process!r}{did_you_mean(spec.process, catalog.names())}: "
            "name a process of processes/",
        )
        return
    known = list(catalog.current(spec.process).process.business_keys)
    for name in spec.keys:
        if name not in known:
            ctx.add(
                (*base, "keys", name),
                f"{name!r} is not a business key of process {spec.process!r}{did_you_mean(name, known)}: "
                f"expected one of {', '.join(known)}",
            )


KIND = StepKind("process_status", ProcessStatusStep, build, lint, before_partition=False, order=75)
