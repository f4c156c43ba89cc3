"""Read a mapping file (YAML with line positions), check it, and compile it into a Transform."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from esb.config.yamlpos import Located, load_yaml
from esb.exceptions import ConfigError
from esb.model.registry import ModelRegistry
from esb.model.tmf import TMFConversionError
from esb.registry import did_you_mean, import_string
from esb.transforms.base import Header, Transform
from esb.transforms.functions import FnContext
from esb.transforms.jmesdialect import JMESPathDialect
from esb.transforms.kinds import PythonTransform, RuleTransform, XSLTTransform
from esb.transforms.rules import Compiler, Dialect
from esb.transforms.siebelmsg import load_siebel_mapping
from esb.transforms.tmf import DIRECTIONS, TMFTransform
from esb.transforms.xpathdialect import XPathDialect

COMMON_KEYS = {"kind", "description", "input", "output", "output_schema", "output_type", "output_encoding",
               "max_bytes", "accepts", "input_schema", "ignore"}
KINDS: dict[str, dict[str, Any]] = {
    "xpath-to-json": {"io": ("xml", "json"), "keys": {"namespaces", "tag_escape", "context", "let", "rules",
                                                          "siebel"}},
    "jmespath": {"io": ("json", "json"), "keys": {"context", "let", "rules", "expression"}},
    "xslt": {"io": ("xml", "xml"), "keys": {"stylesheet", "params", "namespaces"}},
    "python": {"io": None, "keys": {"function"}},
    "tmf": {"io": ("json", "json"), "keys": {"direction", "entity"}},
}


def _fail(doc: Located, path: tuple[str, ...], message: str) -> ConfigError:
    line = f"{doc.where(path)}: {'.'.join(path) or '(top level)'}: {message}"
    return ConfigError(line, findings=[line])


def load_transform(name: str, path: Path, display: str, project_dir: Path) -> Transform:
    """Compile the mapping file at ``path`` (reported as ``display``) into the transform ``name``."""
    doc = load_yaml(path, display=display)
    spec = doc.data
    if not isinstance(spec, dict):
        raise _fail(doc, (), "a mapping file is a YAML mapping (kind, input, output, rules...)")
    kind = spec.get("kind")
    if kind not in KINDS:
        hint = did_you_mean(str(kind), list(KINDS))
        raise _fail(doc, ("kind",), f"kind must be one of {', '.join(KINDS)}{hint}")
    allowed = COMMON_KEYS | KINDS[kind]["keys"]
    for key in spec:
        if key not in allowed:
            raise _fail(doc, (key,), f"unknown key for kind {kind}{did_you_mean(key, allowed)}")
    header = _header(name, doc, spec, kind)
    ctx = FnContext(project_dir, name)
    if kind == "xpath-to-json" and "siebel" in spec:
        return load_siebel_mapping(header, doc, spec, ctx, project_dir)
    if kind == "xpath-to-json":
        dialect = XPathDialect(spec.get("namespaces"), spec.get("tag_escape"))
        _accepts_xml(header, doc, spec, dialect)
        block = Compiler(doc, dialect, ctx).block(spec.get("rules"), spec.get("let"), ("rules",), "")
        return RuleTransform(header, dialect, block, context=_context(doc, spec, dialect))
    if kind == "jmespath":
        jdialect = JMESPathDialect(ctx)
        _accepts_json(header, doc, spec, jdialect)
        if "expression" in spec:
            try:
                return RuleTransform(header, jdialect, None, jdialect.search(str(spec["expression"])))
            except ValueError as exc:
                raise _fail(doc, ("expression",), str(exc)) from None
        block = Compiler(doc, jdialect, ctx).block(spec.get("rules"), spec.get("let"), ("rules",), "")
        return RuleTransform(header, jdialect, block, context=_context(doc, spec, jdialect))
    if kind == "xslt":
        return _xslt(header, doc, spec, path)
    if kind == "tmf":
        _accepts_json(header, doc, spec, JMESPathDialect(ctx))
        return _tmf(header, doc, spec, project_dir)
    return PythonTransform(header, _python_function(doc, spec, path, name), ctx)


def _context(doc: Located, spec: dict[str, Any], dialect: Dialect) -> str | None:
    expr = spec.get("context")
    if expr is None:
        return None
    try:
        dialect.many(str(expr))
    except ValueError as exc:
        raise _fail(doc, ("context",), f"bad expression {expr!r}: {exc}") from None
    return str(expr)


def _header(name: str, doc: Located, spec: dict[str, Any], kind: str) -> Header:
    io = KINDS[kind]["io"]
    source = spec.get("input", io[0] if io else None)
    target = spec.get("output", io[1] if io else None)
    for key, value in (("input", source), ("output", target)):
        if value not in ("xml", "json"):
            raise _fail(doc, (key,), "must be xml or json")
    if io and (source, target) != io:
        raise _fail(doc, ("input",), f"kind {kind} maps {io[0]} to {io[1]}, not {source} to {target}")
    encoding = str(spec.get("output_encoding", "UTF-8"))
    try:
        "".encode(encoding)
    except LookupError:
        raise _fail(doc, ("output_encoding",), f"unknown encoding {encoding!r}") from None
    input_schema = spec.get("input_schema")
    if input_schema is not None and (source != "json" or not isinstance(input_schema, str)):
        raise _fail(doc, ("input_schema",), "input_schema names a canonical schema, for JSON input only")
    return Header(name=name, file=doc.file, kind=kind, input=str(source), output=str(target),
                  output_schema=spec.get("output_schema"), output_type=spec.get("output_type"),
                  output_encoding=encoding, max_bytes=int(spec.get("max_bytes", 10 * 1024 * 1024)),
                  description=str(spec.get("description", "")), input_schema=input_schema,
                  ignore=_ignore(doc, spec.get("ignore")))


def _ignore(doc: Located, raw: Any) -> dict[str, str]:
    """``ignore:`` is a list of source fields, each a path or ``{path: ..., reason: ...}``."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise _fail(doc, ("ignore",), "ignore lists source fields (a path or {path: ..., reason: ...})")
    out: dict[str, str] = {}
    for index, item in enumerate(raw):
        if isinstance(item, str) and item:
            out[item] = ""
        elif isinstance(item, dict) and isinstance(item.get("path"), str) and set(item) <= {"path", "reason"}:
            out[item["path"]] = str(item.get("reason") or "")
        else:
            expected = "expected a path or {path: ..., reason: ...}"
            line = f"{doc.where(('ignore', index))}: ignore[{index}]: {expected}, got {item!r}"
            raise ConfigError(line, findings=[line])
    return out


def _accepts_xml(header: Header, doc: Located, spec: dict[str, Any], dialect: XPathDialect) -> None:
    accepts = spec.get("accepts")
    if accepts is None:
        return
    unknown = set(accepts) - {"root", "test", "describe"} if isinstance(accepts, dict) else {"?"}
    if unknown:
        raise _fail(doc, ("accepts",), "accepts takes root, test (an XPath boolean) and describe")
    header.accepts_root = accepts.get("root")
    if "test" in accepts:
        try:
            xp = dialect.xpath(f"boolean({accepts['test']})")
        except ValueError as exc:
            raise _fail(doc, ("accepts", "test"), f"bad XPath: {exc}") from None
        header.accepts_test = xp
    header.accepts_text = str(accepts.get("describe") or accepts.get("test") or "")


def _accepts_json(header: Header, doc: Located, spec: dict[str, Any], dialect: JMESPathDialect) -> None:
    accepts = spec.get("accepts")
    if accepts is None:
        return
    if not isinstance(accepts, dict) or set(accepts) - {"test", "describe"} or "test" not in accepts:
        raise _fail(doc, ("accepts",), "accepts takes test (a JMESPath expression) and describe")
    try:
        header.accepts_test = dialect.search(str(accepts["test"]))
    except ValueError as exc:
        raise _fail(doc, ("accepts", "test"), f"bad JMESPath: {exc}") from None
    header.accepts_text = str(accepts.get("describe") or accepts["test"])


def _xslt(header: Header, doc: Located, spec: dict[str, Any], path: Path) -> Transform:
    if "stylesheet" not in spec:
        raise _fail(doc, (), "kind xslt needs 'stylesheet' (a .xsl file beside the mapping)")
    sheet = (path.parent / str(spec["stylesheet"])).resolve()
    if not sheet.is_file():
        raise _fail(doc, ("stylesheet",), f"no such file: {spec['stylesheet']}")
    try:
        return XSLTTransform(header, sheet, dict(spec.get("params") or {}))
    except (etree.XMLSyntaxError, etree.XSLTParseError) as exc:
        raise _fail(doc, ("stylesheet",), f"{spec['stylesheet']}: {exc}") from None


def _tmf(header: Header, doc: Located, spec: dict[str, Any], project_dir: Path) -> Transform:
    direction = spec.get("direction")
    if direction not in DIRECTIONS:
        hint = did_you_mean(str(direction), DIRECTIONS)
        raise _fail(doc, ("direction",), f"direction must be from (TMF to canonical) or to{hint}")
    entity = spec.get("entity")
    if not isinstance(entity, str) or not entity:
        raise _fail(doc, ("entity",), "give the TMF class or canonical entity (ProductOrder, product_order)")
    try:
        model = ModelRegistry(project_dir / "canonical_model")  # reading TMF fits it to the schema
        transform = TMFTransform(header, str(direction), entity, model)
    except TMFConversionError as exc:
        raise _fail(doc, ("entity",), str(exc)) from None
    if direction == "from" and header.output_schema is None:
        header.output_schema = transform.spec.canonical_schema
    return transform


def _python_function(doc: Located, spec: dict[str, Any], path: Path, name: str) -> Callable[..., Any]:
    ref = str(spec.get("function") or "")
    module_ref, _, attr = ref.partition(":")
    if not module_ref or not attr:
        raise _fail(doc, ("function",),
                    "give the function as 'file.py:func' (beside the mapping) or 'pkg.mod:func'")
    try:
        if module_ref.endswith(".py"):
            file = (path.parent / module_ref).resolve()
            module_name = "esb_transforms." + name.replace("/", ".") + "." + file.stem
            spec_ = importlib.util.spec_from_file_location(module_name, file)
            if spec_ is None or spec_.loader is None or not file.is_file():
                raise _fail(doc, ("function",), f"no such file: {module_ref}")
            module = importlib.util.module_from_spec(spec_)
            sys.modules[module_name] = module
            spec_.loader.exec_module(module)
            func = getattr(module, attr)
        else:
            func = import_string(ref)
    except ConfigError:
        raise
    except Exception as exc:
        raise _fail(doc, ("function",), f"cannot load {ref}: {type(exc).__name__}: {exc}") from None
    if not callable(func):
        raise _fail(doc, ("function",), f"{ref} is not callable")
    return func  # type: ignore[no-any-return]
