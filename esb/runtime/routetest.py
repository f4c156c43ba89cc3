"""Whole-route tests: ``tests/routes/<route id>_test.yaml``, run by ``esb test`` through the real worker.

A route test feeds one input message to the route's worker -- the same :class:`RouteWorker` the hub
runs, with the pipeline built from routes.yaml -- and replaces every endpoint with an in-memory mock:
sinks capture what they are given, enrich (request-reply) endpoints answer with a given body or raise a
given error. Nothing touches the network or the disk (the journal is an in-memory SQLite one per case;
a step reading the journal's database, ``process_status``, gets an empty in-memory one), and the worker
does not wait between redeliveries. Each case says how the message must end and what each endpoint must
have received::

    route: crm-order-to-iom                  # optional: the file name without _test.yaml
    cases:
      - name: a web order is delivered with high priority
        input: ../../transforms/crm/samples/order_single_utf8.xml   # or input_inline: (text or JSON)
        headers: {x-origin: test}            # optional, with type: (the message type)
        mocks:                               # optional, per endpoint
          billing.query_balance: {reply_inline: {balance: "12.50", currency: CNY}}   # or reply: a file
          iom.orders_in: {error: {type: TransportError, message: broker down}, times: 1}
        end: delivered                       # delivered | filtered | dead_lettered
        error: {type: MappingError, contains: Order_spcNumber}   # why it was dead-lettered
        outputs:                             # per endpoint: one entry per message it received
          iom.orders_in:
            - checks: [{json_equals: {path: orderPriority, value: "1"}}]   # expect, expect_inline, checks
        reply: {checks: [...]}               # request-reply routes: the answer to the caller

A mocked error has a ``type`` (TransportError: retried by the route's policy; RemoteError, with ``code``
and ``retryable``; MessageError: permanent), a ``message``, and ``times`` (fail only the first N calls).
A ``reply:`` file ending in ``.json`` is parsed (the dict a SOAP or REST client hands back); any other file
is answered as bytes. The route's sinks (``to``) must receive exactly what ``outputs`` lists (nothing when
they are not listed), each as that endpoint gets it (a ``to:`` item ``{endpoint, transform}``: mapped by
its own transform); any other endpoint is checked only when listed. What an endpoint received is what it
accepted: a write or request the mock failed is not counted.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from esb.config.routes import Route
from esb.config.yamlpos import Located, load_yaml
from esb.exceptions import ConfigError, EsbError, MessageError, RemoteError, TransportError
from esb.journal import Journal
from esb.message import Message
from esb.project import Project
from esb.runtime.worker import RouteWorker, Stopping
from esb.testing import captured_logs
from esb.transforms.registry import TEST_SUFFIX
from esb.transforms.testrun import (
    OUTPUT_KEYS,
    CaseResult,
    case_error,
    check_case_input,
    check_output_spec,
    compare,
    dump,
    error_problem,
    is_test_of,
)
from esb.typing import Delivery

#: Where a project's whole-route tests live, one ``<route id>_test.yaml`` per route.
ROUTE_TESTS_DIR = "tests/routes"
CASE_KEYS = {"name", "input", "input_inline", "headers", "type", "mocks", "end", "error", "outputs", "reply"}
MOCK_KEYS = {"reply", "reply_inline", "error", "times"}
ENDS = ("delivered", "filtered", "dead_lettered")
ERROR_TYPES = ("TransportError", "RemoteError", "MessageError")
#: How many waits (redelivery back-offs, dead-letter retries) a case may take before it is stopped.
MAX_WAITS = 50


def is_route_test(path: Path, project_dir: Path) -> bool:
    """True when ``path`` is a whole-route test: it lies under tests/routes/ or names a ``route:``."""
    return is_test_of(path, project_dir / ROUTE_TESTS_DIR, "route")


class MockEndpoint:
    """One endpoint's mock for one case: what it answers or raises, and what it accepted."""

    def __init__(self, name: str, spec: dict[str, Any], base: Path) -> None:
        self.name = name
        self.spec = spec
        self.base = base
        self.calls = 0
        self.received: list[Message] = []
        self.problems: list[str] = []

    def _maybe_fail(self) -> None:
        self.calls += 1
        error = self.spec.get("error")
        times = self.spec.get("times")
        if error is not None and (times is None or self.calls <= int(times)):
            raise make_error(error, self.name)

    def write(self, message: Message) -> None:
        """Accept ``message`` (a sink's write), or raise the mocked error."""
        self._maybe_fail()
        self.received.append(message)

    def request(self, message: Message, timeout: float) -> Message:
        """Answer ``message`` with the mocked reply, or raise the mocked error."""
        self._maybe_fail()
        if "reply" not in self.spec and "reply_inline" not in self.spec:
            problem = (
                f"{self.name} was asked for a reply, but the case's mocks give it none (reply, reply_inline)"
            )
            self.problems.append(problem)
            raise MessageError(f"route test: {problem}")
        self.received.append(message)
        return message.derive(self._reply(), suffix="reply")

    def _reply(self) -> Any:
        if "reply_inline" in self.spec:
            value = self.spec["reply_inline"]
            return value.encode("utf-8") if isinstance(value, str) else value
        path = self.base / str(self.spec["reply"])
        data = path.read_bytes()
        return orjson.loads(data) if path.suffix == ".json" else data


class _MockConnection:
    """The sink/requester the worker gets for a mocked endpoint (connect and close do nothing)."""

    def __init__(self, mock: MockEndpoint) -> None:
        self.mock = mock

    def connect(self) -> None:
        """Nothing to connect."""

    def write(self, message: Message) -> None:
        """Hand ``message`` to the mock."""
        self.mock.write(message)

    def request(self, message: Message, timeout: float) -> Message:
        """Ask the mock."""
        return self.mock.request(message, timeout)

    def close(self) -> None:
        """Nothing to close."""


class _MockAdapter:
    """Stands in for an endpoint's adapter: every sink it makes is that endpoint's mock."""

    def __init__(self, mock: MockEndpoint) -> None:
        self.mock = mock

    def sink(self, endpoint: Any, context: Any) -> _MockConnection:
        """Return a connection to the mock."""
        return _MockConnection(self.mock)

    def source(self, endpoint: Any, context: Any) -> Any:
        """A route test never reads a source: the input is handed to the worker."""
        raise ConfigError(f"route test: the source {self.mock.name} is never read")


@dataclasses.dataclass
class MockedProject(Project):
    """The project with every endpoint's adapter replaced by the current case's mocks."""

    mocks: dict[str, MockEndpoint] = dataclasses.field(default_factory=dict)
    base: Path = Path()

    @classmethod
    def of(cls, project: Project) -> MockedProject:
        """Return ``project`` with mocked endpoints, sharing its compiled transforms and schemas."""
        fields = {f.name: getattr(project, f.name) for f in dataclasses.fields(Project)}
        settings = project.settings
        # steps that read the journal's database (process_status) get an empty in-memory one, never the disk
        fields["settings"] = settings.model_copy(
            update={"journal": settings.journal.model_copy(update={"url": "sqlite://"})}
        )
        mocked = cls(**fields)
        mocked.__dict__["transforms"] = project.transforms
        mocked.__dict__["model"] = project.model
        mocked.__dict__["tables"] = project.tables
        return mocked

    def mock(self, endpoint: str) -> MockEndpoint:
        """Return the mock of ``endpoint`` (a capturing sink unless the case configured it)."""
        found = self.mocks.get(endpoint)
        if found is None:
            found = self.mocks[endpoint] = MockEndpoint(endpoint, {}, self.base)
        return found

    def adapter_for(self, endpoint: str) -> Any:
        """Return the mock adapter of ``endpoint`` (the endpoint must exist in the project)."""
        self.endpoint(endpoint)
        return _MockAdapter(self.mock(endpoint))


class _TestWorker(RouteWorker):
    """The hub's route worker, except that it does not wait between redeliveries (it counts them)."""

    waits = 0

    def _sleep(self, seconds: float) -> None:
        self.waits += 1
        if self.waits > MAX_WAITS:
            raise Stopping


def make_error(spec: Any, endpoint: str) -> EsbError:
    """Return the exception a mock raises from ``{type, message, code, retryable}``."""
    spec = spec if isinstance(spec, dict) else {}
    kind = str(spec.get("type") or "TransportError")
    message = str(spec.get("message") or f"mocked {kind} from {endpoint}")
    if kind == "RemoteError":
        return RemoteError(message, code=spec.get("code"), retryable=bool(spec.get("retryable", False)))
    if kind == "MessageError":
        return MessageError(message)
    return TransportError(message, endpoint=endpoint)


class RouteTestFile:
    """One loaded route test file: its route and cases (ConfigError with file:line when broken)."""

    def __init__(self, path: Path, project: Project) -> None:
        """Load and check ``path`` against ``project`` (the route and every named endpoint must exist)."""
        self.path = path
        self.project = project
        self.display = _display(path, project.root)
        self.doc: Located = load_yaml(path, display=self.display)
        data = self.doc.data
        if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or not data["cases"]:
            raise self._fail((), "a route test file needs 'cases:', a non-empty list")
        unknown = sorted(set(data) - {"route", "cases"})
        if unknown:
            raise self._fail((unknown[0],), f"unknown key {unknown[0]!r} (route, cases)")
        name = str(data.get("route") or path.name.removesuffix(TEST_SUFFIX))
        try:
            self.route: Route = project.route(name)
        except ConfigError as exc:
            raise self._fail(("route",) if "route" in data else (), f"{exc} (give route: <id>)") from None
        self.cases: list[dict[str, Any]] = data["cases"]
        for index, case in enumerate(self.cases):
            self._check_case(index, case)

    def _fail(self, path: tuple[Any, ...], message: str) -> ConfigError:
        return case_error(self.doc, path, message)

    def _check_case(self, index: int, case: Any) -> None:
        where = ("cases", index)
        shape = "name, input, mocks, end, error, outputs, reply"
        check_case_input(self.doc, self.path.parent, where, case, CASE_KEYS, shape)
        if case.get("end") not in ENDS:
            raise self._fail((*where, "end"), f"end is one of {', '.join(ENDS)}, got {case.get('end')!r}")
        if "error" in case and case["end"] != "dead_lettered":
            raise self._fail((*where, "error"), "error goes with end: dead_lettered")
        for key in ("headers", "mocks", "outputs"):
            if key in case and not isinstance(case[key], dict):
                raise self._fail((*where, key), f"{key} is a mapping")
        for endpoint, spec in (case.get("mocks") or {}).items():
            self._check_mock((*where, "mocks", endpoint), str(endpoint), spec)
        for endpoint, outputs in (case.get("outputs") or {}).items():
            self._check_endpoint((*where, "outputs", endpoint), str(endpoint))
            if not isinstance(outputs, list):
                raise self._fail((*where, "outputs", endpoint), "list one entry (expect, checks) per message")
            for n, spec in enumerate(outputs):
                self._check_output((*where, "outputs", endpoint, n), spec)
        if "reply" in case:
            if self.route.to is not None:
                raise self._fail((*where, "reply"), f"route {self.route.id} does not reply (it has to:)")
            self._check_output((*where, "reply"), case["reply"])

    def _check_endpoint(self, path: tuple[Any, ...], endpoint: str) -> None:
        try:
            self.project.endpoint(endpoint)
        except ConfigError as exc:
            raise self._fail(path, str(exc)) from None

    def _check_mock(self, path: tuple[Any, ...], endpoint: str, spec: Any) -> None:
        self._check_endpoint(path, endpoint)
        if not isinstance(spec, dict) or set(spec) - MOCK_KEYS:
            raise self._fail(path, f"a mock is a mapping of {', '.join(sorted(MOCK_KEYS))}")
        if "reply" in spec and not (self.path.parent / str(spec["reply"])).is_file():
            raise self._fail((*path, "reply"), f"no such file: {spec['reply']}")
        error = spec.get("error")
        if "error" in spec and (
            not isinstance(error, dict) or error.get("type", "TransportError") not in ERROR_TYPES
        ):
            raise self._fail(
                (*path, "error"), f"error is {{type, message}}, type one of {', '.join(ERROR_TYPES)}"
            )

    def _check_output(self, path: tuple[Any, ...], spec: Any) -> None:
        if not isinstance(spec, dict) or set(spec) - OUTPUT_KEYS:
            raise self._fail(path, f"an expected output is a mapping of {', '.join(sorted(OUTPUT_KEYS))}")
        check_output_spec(spec, self.path.parent, self._fail, path)

    def run(self) -> list[CaseResult]:
        """Run every case through the route's worker; a route that does not build fails every case."""
        mocked = MockedProject.of(self.project)
        mocked.base = self.path.parent
        return [self._run_case(mocked, index, case) for index, case in enumerate(self.cases)]

    def _run_case(self, project: MockedProject, index: int, case: dict[str, Any]) -> CaseResult:
        name = str(case.get("name") or f"case {index + 1}")
        project.mocks = {
            str(e): MockEndpoint(str(e), dict(s), self.path.parent)
            for e, s in (case.get("mocks") or {}).items()
        }
        try:
            with captured_logs() as logs, _journal() as journal:
                ended = self._feed(project, journal, self._message(case, index))
        except ConfigError as exc:
            return CaseResult(self.display, name, False, f"the route does not build: {exc}")
        problems = [p for mock in project.mocks.values() for p in mock.problems]
        problems.extend(self._compare(case, project, ended))
        if problems:
            errors = Counter(
                f"{e.get('event')}: {e.get('error', '')}" for e in logs if e.get("log_level") == "error"
            )
            if errors:
                lines = [f"  {line}" + (f" (x{n})" if n > 1 else "") for line, n in errors.items()]
                problems.append("the worker logged:\n" + "\n".join(lines))
        return CaseResult(self.display, name, not problems, "\n".join(problems))

    def _message(self, case: dict[str, Any], index: int) -> Message:
        if "input" in case:
            body: Any = (self.path.parent / str(case["input"])).read_bytes()
        else:
            inline = case["input_inline"]
            body = inline.encode("utf-8") if isinstance(inline, str) else orjson.dumps(inline)
        return Message(
            body=body,
            id=f"route-test-{index + 1}",
            type=case.get("type"),
            source=self.route.from_,
            headers=dict(case.get("headers") or {}),
        )

    def _feed(self, project: MockedProject, journal: Journal, message: Message) -> _Ended:
        """Hand ``message`` to a fresh worker of the route; return how it ended."""
        ended = _Ended()
        worker = _TestWorker(project, self.route, journal)
        respond: Callable[[Message], None] | None = ended.replies.append if self.route.to is None else None
        delivery = Delivery(message, ended.settle, respond=respond)
        try:
            worker.handle(delivery)
            if worker.aggregator is not None:  # the end of the test is the end of every group's time
                worker.aggregator.clock = lambda: math.inf
                for batch in worker.aggregator.due():
                    worker._release(batch)
        except Stopping:
            ended.stopped = True
        finally:
            worker._shutdown()  # as the hub stops a worker: closes steps and sinks, gives back held parts
        ended.delivery = delivery
        ended.waits = worker.waits
        return ended

    def _compare(self, case: dict[str, Any], project: MockedProject, ended: _Ended) -> list[str]:
        problems: list[str] = []
        actual = ended.outcome()
        if actual != case["end"]:
            why = f" ({type(ended.failure).__name__}: {ended.failure})" if ended.failure is not None else ""
            problems.append(f"end: expected {case['end']}, got {actual}{why}")
        elif "error" in case and ended.failure is not None:
            problem = error_problem(case["error"], ended.failure)
            if problem:
                problems.append(problem)
        outputs: dict[str, Any] = dict(case.get("outputs") or {})
        checked = list(outputs) + [e for e in self.route.destinations() if e not in outputs]
        for endpoint in checked:
            got = project.mock(endpoint).received
            problems.extend(self._endpoint_problems(endpoint, outputs.get(endpoint) or [], got))
        if "reply" in case:
            if not ended.replies:
                problems.append("reply: the route did not answer the caller")
            else:
                problems.extend(self._output_problems("reply", case["reply"], ended.replies[-1]))
        return problems

    def _endpoint_problems(self, endpoint: str, expected: list[Any], got: list[Message]) -> list[str]:
        if len(got) != len(expected):
            bodies = "\n".join(dump(_data(m.body)) for m in got) or "(nothing)"
            return [f"{endpoint}: expected {len(expected)} message(s), got {len(got)}:\n{bodies}"]
        problems: list[str] = []
        for n, (spec, message) in enumerate(zip(expected, got, strict=True)):
            problems.extend(self._output_problems(f"{endpoint}[{n}]", spec, message))
        return problems

    def _output_problems(self, what: str, spec: dict[str, Any], message: Message) -> list[str]:
        found = compare(spec, _data(message.body), message.headers, self.path.parent)
        return [f"{what}: {problem}" for problem in found]


@dataclasses.dataclass
class _Ended:
    """How the case's delivery was settled, and what the caller was answered."""

    replies: list[Message] = dataclasses.field(default_factory=list)
    delivery: Delivery | None = None
    given_back: BaseException | None = None
    stopped: bool = False
    waits: int = 0

    def settle(self, error: BaseException | None) -> None:
        """The delivery's ack: ``error`` means it was given back for redelivery."""
        self.given_back = error

    @property
    def failure(self) -> BaseException | None:
        """Why the message was dead-lettered or given back."""
        if self.delivery is not None and self.delivery.failure is not None:
            return self.delivery.failure
        return self.given_back

    def outcome(self) -> str:
        """``delivered``, ``filtered``, ``dead_lettered``, or what else happened (in words)."""
        if self.stopped:
            return f"stopped after {self.waits} waits (the dead-letter endpoint kept failing?)"
        if self.delivery is None or not self.delivery.settled:
            return "not settled (held, e.g. by an aggregate)"
        if self.given_back is not None:
            return "given back for redelivery"
        return str(self.delivery.outcome)


def _data(body: Any) -> Any:
    """A body as the checks see it: JSON text parsed, XML bytes as they are, data as it is."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, bytes) and not body.lstrip().startswith(b"<"):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
    return body


@contextmanager
def _journal() -> Iterator[Journal]:
    journal = Journal("sqlite://")
    journal.connect()
    try:
        yield journal
    finally:
        journal.close()


def _display(path: Path, project_dir: Path) -> str:
    try:
        return path.resolve().relative_to(project_dir.resolve()).as_posix()
    except ValueError:
        return str(path)
