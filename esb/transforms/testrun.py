"""Data-driven mapping tests: the ``*_test.yaml`` files beside the transforms, run by ``esb test``.

A test file names its transform (or is named ``<transform>_test.yaml`` beside it) and lists cases::

    cases:
      - name: one item, UTF-8
        input: samples/order_single_utf8.xml        # a file beside the test, or input_inline: ...
        expect: samples/order_single_utf8.json      # whole output (json equals); or expect_inline: {...}
        checks:
          - json_equals: {path: "productOrderItem[0].action", value: add}   # JMESPath into the output
          - json_contains: {value: {state: acknowledged}}                   # subset of the output
          - xpath_equals: {path: "string(/order/@no)", value: "SO1"}        # XML output
          - header_equals: {name: esb-warnings, value: ["..."]}             # a header of the result
      - name: not an order
        input: samples/not_an_order.xml
        error: {type: UnknownMessageTypeError, contains: IntObjectName}
      - name: a deliberately partial order (only the fields this case is about)
        input_inline: {id: SO1}
        skip_schema: "the canonical schema needs orderDate; this case checks the id rule only"

When the mapping declares ``output_schema`` (a canonical schema name), every case's output is validated
against it and a violation fails the case with its JSON path; ``skip_schema: <why>`` opts a case out.
The output checks (``expect``, ``expect_inline``, ``checks``) are shared with the whole-route tests
(:mod:`esb.runtime.routetest`) through :func:`compare`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jmespath
import orjson
from lxml import etree

from esb.config.yamlpos import Located, load_yaml
from esb.exceptions import ConfigError, EsbError
from esb.expressions import validate_expression
from esb.message import Message
from esb.model.registry import ModelRegistry
from esb.model.validation import CanonicalValidator
from esb.transforms.registry import TEST_SUFFIX, TransformRegistry
from esb.xmlsafe import parse_xml

CASE_KEYS = {"name", "input", "input_inline", "expect", "expect_inline", "checks", "error", "skip_schema"}
#: The keys that say what an output must be (a mapping case, or one message a route test expects).
OUTPUT_KEYS = {"expect", "expect_inline", "checks"}
CHECKS = {"json_equals", "json_contains", "xpath_equals", "header_equals"}


@dataclass
class CaseResult:
    """The outcome of one case: ``ok``, and a readable ``detail`` (a diff or an error) when not."""

    file: str
    name: str
    ok: bool
    detail: str = ""


def find_test_files(*paths: Path) -> list[Path]:
    """Return every ``*_test.yaml`` under ``paths`` (a file is taken as it is), in order, each once."""
    found: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        for file in [path] if path.is_file() else sorted(path.rglob(f"*{TEST_SUFFIX}")):
            if file.resolve() not in seen:
                seen.add(file.resolve())
                found.append(file)
    return found


def dump(value: Any) -> str:
    """Render a value for diffs: indented JSON with sorted keys, XML bytes as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str) and value.startswith("<"):
        return value.replace("><", ">\n<")
    return orjson.dumps(
        value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
    ).decode()


def diff(expected: Any, actual: Any) -> str:
    """Return a unified diff of ``expected`` against ``actual``."""
    lines = difflib.unified_diff(
        dump(expected).splitlines(), dump(actual).splitlines(), "expected", "actual", lineterm=""
    )
    return "\n".join(lines)


def contains(actual: Any, expected: Any) -> bool:
    """True when ``expected`` is a subset of ``actual`` (dict keys recursively, list items by position)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) >= len(expected)
            and all(contains(a, e) for a, e in zip(actual, expected, strict=False))
        )
    return bool(actual == expected)


def project(actual: Any, expected: Any) -> Any:
    """Return the part of ``actual`` that ``expected`` talks about (for a readable contains-diff)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: project(actual[k], v) for k, v in expected.items() if k in actual}
    if isinstance(expected, list) and isinstance(actual, list):
        return [project(a, e) for a, e in zip(actual, expected, strict=False)] + actual[len(expected) :]
    return actual


def check_output_spec(
    spec: dict[str, Any],
    base: Path,
    fail: Callable[[tuple[Any, ...], str], ConfigError],
    where: tuple[Any, ...],
) -> None:
    """Refuse an ``expect`` file that does not exist and a check that is not one of :data:`CHECKS`."""
    if "expect" in spec and not (base / str(spec["expect"])).is_file():
        raise fail((*where, "expect"), f"no such file: {spec['expect']}")
    checks = spec.get("checks") or []
    if not isinstance(checks, list):
        raise fail((*where, "checks"), "checks is a list of {kind: spec}")
    for n, check in enumerate(checks):
        if not isinstance(check, dict) or len(check) != 1 or next(iter(check)) not in CHECKS:
            raise fail((*where, "checks", n), f"a check is one of {', '.join(sorted(CHECKS))}")
        kind, body = next(iter(check.items()))
        path = body.get("path") if kind.startswith("json_") and isinstance(body, dict) else None
        if path and (problem := validate_expression(str(path))) is not None:
            raise fail(
                (*where, "checks", n, kind, "path"),
                f"invalid JMESPath path {path!r}: {problem} (quote a key that has spaces or dashes: "
                "'\"SR Number\"')",
            )


def is_test_of(path: Path, folder: Path, key: str) -> bool:
    """True when the test file ``path`` lies under ``folder`` or its document names ``key`` at the top
    (``route:``, ``table:``): how ``esb test`` tells a route or a table test from a mapping test."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        pass
    try:
        data = load_yaml(path, display=str(path)).data
    except ConfigError:
        return False
    return isinstance(data, dict) and key in data


def compare(spec: dict[str, Any], output: Any, headers: dict[str, Any], base: Path) -> list[str]:
    """Return what is wrong with ``output`` (and its ``headers``) against ``spec``'s expect and checks.

    ``expect`` names a file relative to ``base``; an empty list means the output is as expected.
    """
    problems: list[str] = []
    if "expect" in spec or "expect_inline" in spec:
        expected = _expected(spec, output, base)
        if _normal(expected) != _normal(output):
            problems.append("output differs:\n" + diff(_normal(expected), _normal(output)))
    for check in spec.get("checks") or []:
        ((kind, params),) = check.items()
        target = headers if kind == "header_equals" else output
        problem = _CHECKERS[kind](params or {}, target)
        if problem:
            problems.append(problem)
    return problems


def error_problem(wanted: Any, exc: BaseException) -> str:
    """Return why ``exc`` is not the error ``wanted`` (``{type, contains}``) describes, or "" when it is."""
    got = f"{type(exc).__name__}: {exc}"
    if not isinstance(wanted, dict):
        return f"unexpected error: {got}"
    ok = all(
        (
            not wanted.get("type") or any(c.__name__ == wanted["type"] for c in type(exc).__mro__),
            str(wanted.get("contains", "")) in str(exc),
        )
    )
    return "" if ok else f"expected error {wanted}, got {got}"


def case_error(doc: Located, path: tuple[Any, ...], message: str) -> ConfigError:
    """A broken test file: ``file:line: message`` as the error and its one finding."""
    line = f"{doc.where(path)}: {message}"
    return ConfigError(line, findings=[line])


def check_case_input(
    doc: Located, folder: Path, where: tuple[Any, ...], case: Any, keys: set[str], shape: str
) -> None:
    """Check what every test case shares: a mapping of known ``keys`` with exactly one of ``input`` (a file
    under ``folder`` that exists) and ``input_inline``; ``shape`` lists the keys for the error."""
    if not isinstance(case, dict):
        raise case_error(doc, where, f"a case is a mapping ({shape})")
    unknown = sorted(set(case) - keys)
    if unknown:
        raise case_error(doc, (*where, unknown[0]), f"unknown key {unknown[0]!r} in a case")
    if ("input" in case) == ("input_inline" in case):
        raise case_error(doc, where, "give exactly one of input (a file) and input_inline")
    if "input" in case and not (folder / str(case["input"])).is_file():
        raise case_error(doc, (*where, "input"), f"no such file: {case['input']}")


class TestFile:
    """One loaded ``*_test.yaml``: its transform and its cases (ConfigError with file:line if broken)."""

    def __init__(self, path: Path, registry: TransformRegistry, model: ModelRegistry | None = None) -> None:
        """Load ``path``; ``model`` (default: the project's canonical_model/) validates the outputs."""
        self.path = path
        self.registry = registry
        self.model = model or ModelRegistry(registry.project_dir / "canonical_model")
        self.display = _display(path, registry.project_dir)
        self.doc: Located = load_yaml(path, display=self.display)
        data = self.doc.data
        if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or not data["cases"]:
            raise self._fail((), "a test file needs 'cases:', a non-empty list")
        self.transform_name = str(data.get("transform") or self._default_name())
        self.cases: list[dict[str, Any]] = data["cases"]
        for index, case in enumerate(self.cases):
            self._check_case(index, case)

    def _fail(self, path: tuple[Any, ...], message: str) -> ConfigError:
        return case_error(self.doc, path, message)

    def _default_name(self) -> str:
        try:
            rel = self.path.resolve().relative_to(self.registry.root.resolve())
        except ValueError:
            message = "give 'transform: system/name' (the file is not under transforms/)"
            raise self._fail((), message) from None
        return rel.as_posix()[: -len(TEST_SUFFIX)]

    def _check_case(self, index: int, case: Any) -> None:
        where = ("cases", index)
        shape = "name, input, expect, checks, error"
        check_case_input(self.doc, self.path.parent, where, case, CASE_KEYS, shape)
        skip = case.get("skip_schema")
        if "skip_schema" in case and (not isinstance(skip, str) or not skip.strip()):
            raise self._fail(
                (*where, "skip_schema"),
                f"skip_schema says why the output may break the output schema (text), got {skip!r}",
            )
        check_output_spec(case, self.path.parent, self._fail, where)

    def run(self) -> list[CaseResult]:
        """Run every case; a transform that does not compile fails every case with its error."""
        try:
            transform = self.registry.get(self.transform_name)
            schema = transform.header.output_schema
            validator = self.model.validator(schema) if schema else None
        except ConfigError as exc:
            return [
                CaseResult(self.display, str(c.get("name", i)), False, str(exc))
                for i, c in enumerate(self.cases)
            ]
        return [self._run_case(transform, validator, i, case) for i, case in enumerate(self.cases)]

    def _run_case(
        self, transform: Any, validator: CanonicalValidator | None, index: int, case: dict[str, Any]
    ) -> CaseResult:
        name = str(case.get("name") or f"case {index + 1}")
        body = self._input(case)
        try:
            result = transform.apply(Message(body=body, id=f"test-{index + 1}"))
        except EsbError as exc:
            return self._error_result(name, case, exc)
        output = result.body
        if transform.header.output == "json" and isinstance(output, bytes):  # JSON text (kind tmf, to)
            output = orjson.loads(output)
        if "error" in case:
            detail = f"expected {case['error']}, got a result:\n{dump(output)}"
            return CaseResult(self.display, name, False, detail)
        problems = compare(case, output, result.headers, self.path.parent)
        if validator is not None and "skip_schema" not in case:
            problems.extend(schema_problems(validator, output))
        return CaseResult(self.display, name, not problems, "\n".join(problems))

    def _input(self, case: dict[str, Any]) -> Any:
        if "input" in case:
            return (self.path.parent / str(case["input"])).read_bytes()
        inline = case["input_inline"]
        return inline.encode("utf-8") if isinstance(inline, str) else inline

    def _error_result(self, name: str, case: dict[str, Any], exc: EsbError) -> CaseResult:
        problem = error_problem(case.get("error"), exc)
        return CaseResult(self.display, name, not problem, problem)


def schema_problems(validator: CanonicalValidator, output: Any) -> list[str]:
    """Return one line per violation of ``validator``'s schema by ``output`` (empty when it conforms)."""
    if not isinstance(output, dict | list):
        return [f"output schema {validator.name}: expected a JSON object, got {type(output).__name__}"]
    errors = validator.errors(output)
    if not errors:
        return []
    lines = [f"output breaks its output schema {validator.name} ({len(errors)} error(s)):"]
    lines.extend(f"  {path}: {message}" for path, message in errors)
    lines.append(
        "  (fix the mapping, or give the case skip_schema: <why> if the output is partial on purpose)"
    )
    return ["\n".join(lines)]


def _expected(spec: dict[str, Any], output: Any, base: Path) -> Any:
    if "expect_inline" in spec:
        value = spec["expect_inline"]
        return value.encode("utf-8") if isinstance(value, str) and isinstance(output, bytes) else value
    data = (base / str(spec["expect"])).read_bytes()
    return data if isinstance(output, bytes) else orjson.loads(data)


def _json_equals(spec: dict[str, Any], output: Any) -> str:
    path = spec.get("path")
    actual = jmespath.search(path, output) if path else output
    if actual == spec.get("value"):
        return ""
    return f"json_equals {path or '(whole)'}:\n" + diff(spec.get("value"), actual)


def _json_contains(spec: dict[str, Any], output: Any) -> str:
    path = spec.get("path")
    actual = jmespath.search(path, output) if path else output
    expected = spec.get("value")
    if contains(actual, expected):
        return ""
    return f"json_contains {path or '(whole)'}:\n" + diff(expected, project(actual, expected))


def _header_equals(spec: dict[str, Any], headers: dict[str, Any]) -> str:
    name = str(spec.get("name") or "")
    actual = headers.get(name)
    if actual == spec.get("value"):
        return ""
    return f"header_equals {name}:\n" + diff(spec.get("value"), actual)


def _xpath_equals(spec: dict[str, Any], output: Any) -> str:
    if not isinstance(output, bytes):
        return "xpath_equals needs an XML output"
    root = parse_xml(output)
    result = root.xpath(str(spec["path"]), namespaces=spec.get("namespaces") or {}, smart_strings=False)
    if isinstance(result, list):
        result = [r if isinstance(r, str) else "".join(r.itertext()) for r in result]
        result = result[0] if len(result) == 1 else result
    if isinstance(result, float) and result.is_integer():
        result = int(result)
    if result == spec.get("value"):
        return ""
    return f"xpath_equals {spec['path']}: expected {spec.get('value')!r}, got {result!r}"


_CHECKERS: dict[str, Callable[[dict[str, Any], Any], str]] = {
    "json_equals": _json_equals,
    "json_contains": _json_contains,
    "header_equals": _header_equals,
    "xpath_equals": _xpath_equals,
}


def _normal(value: Any) -> Any:
    """XML bytes canonicalised (c14n), other bytes as text, data as it is."""
    if isinstance(value, bytes):
        try:
            return etree.tostring(parse_xml(value), method="c14n").decode()
        except EsbError:
            return value.decode("utf-8", "replace")
    return value


def _display(path: Path, project_dir: Path) -> str:
    try:
        return path.resolve().relative_to(project_dir.resolve()).as_posix()
    except ValueError:
        return str(path)
