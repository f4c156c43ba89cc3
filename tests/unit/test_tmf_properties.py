"""Property: any document valid against a TMF SID schema of a covered class converts, never refused.

Documents are generated from the SID schemas in ``../shared/tmf-schemas`` by hypothesis-jsonschema,
their cross-file ``$ref``s inlined offline by :func:`esb.model.tmf.bundle.bundled_schema` (nesting cut at
a few levels: the SID model is recursive). ``@type`` is the class or absent (TMF630: ``@type`` names
the class; a document claiming another class is another document). Everything else is what the SID
allows, extra fields with any JSON value included.

The examples are the same on every run (``derandomize``), so the suite is deterministic; set
``ESB_TMF_EXPLORE=1`` to draw new ones (and raise ``EXAMPLES``) when hunting for conversion bugs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import hypothesis_jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esb.model.registry import ModelRegistry
from esb.model.tmf import ENTITIES, dumps, from_tmf, loads, to_tmf
from esb.model.tmf.bundle import bundled_schema
from esb.model.tmf.schemas import tmf_errors, tmf_schemas_dir
from esb.model.validation import json_path

ROOT = Path(__file__).resolve().parents[2]
TMF_DIR = tmf_schemas_dir(ROOT)
MODEL = ModelRegistry(ROOT / "canonical_model")
#: how deep the recursive SID classes are unfolded, and how many documents per class
DEPTH = 4
EXAMPLES = 40


def _classes() -> list[Any]:
    out = []
    for name, spec in sorted(ENTITIES.items()):
        for cls, schema_file in spec.schema_files.items():
            reason = None if schema_file else f"{spec.api} {cls} is not published in the SID schema folder"
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            out.append(pytest.param(name, cls, schema_file, id=cls, marks=marks))
    return out


def _documents(cls: str, schema_file: str) -> st.SearchStrategy[Any]:
    if not TMF_DIR.is_dir():
        pytest.skip(f"TMF SID schemas not found at {TMF_DIR} (set ESB_TMF_SCHEMAS)")
    pinned = {"type": "object", "properties": {"@type": {"const": cls}}}
    sid = bundled_schema(schema_file, TMF_DIR, DEPTH)
    schema = {"allOf": [sid, pinned]}
    # half the documents also carry the top-level fields the canonical model requires (when the SID
    # class has them), so the complete conversion is exercised as often as the incomplete one
    wanted = MODEL.schema(ENTITIES[_entity(cls)].canonical_schema).get("required", [])
    declared = set(_declared(sid)) | {"@type"}
    complete = {"allOf": [sid, {**pinned, "required": [f for f in wanted if f in declared]}]}
    return st.one_of(
        hypothesis_jsonschema.from_schema(schema, allow_x00=False),
        hypothesis_jsonschema.from_schema(complete, allow_x00=False),
    )


def _entity(cls: str) -> str:
    return next(name for name, spec in ENTITIES.items() if cls in spec.tmf_types)


def _declared(schema: Any) -> list[str]:
    """The property names a bundled schema declares, through its allOf parts."""
    if not isinstance(schema, dict):
        return []
    names = list(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        names.extend(_declared(part))
    return names


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    if isinstance(node, dict) and node:
        return {k: v for key, value in node.items() for k, v in _leaves(value, (*path, key)).items()}
    if isinstance(node, list) and node:
        return {k: v for i, value in enumerate(node) for k, v in _leaves(value, (*path, i)).items()}
    return {path: node}


def _anywhere(path: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    """The path without its array positions, and the value as JSON text."""
    return (*("[]" if isinstance(p, int) else p for p in path), dumps(value, indent=None))


def _dotted(path: tuple[Any, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _named(path: tuple[Any, ...], warnings: list[str]) -> bool:
    """True when a warning is about ``path`` or one of the values that hold it."""
    for end in range(len(path), -1, -1):
        prefixes = {json_path(path[:end]) + ":", _dotted(path[:end]) + ":"}
        if any(w.startswith(p) for w in warnings for p in prefixes):
            return True
    return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


@pytest.mark.parametrize(("entity", "cls", "schema_file"), _classes())
def test_sid_documents_convert_and_come_back(entity: str, cls: str, schema_file: str) -> None:
    """A SID-valid document is read (never refused); what the canonical form lacks is in a warning."""
    spec = ENTITIES[entity]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not os.environ.get("ESB_TMF_EXPLORE"),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(generated=_documents(cls, schema_file))
    def check(generated: dict[str, Any]) -> None:
        doc = loads(json.dumps(generated))  # as the CLI and the route read it: exact decimals
        canonical, warnings = from_tmf(cls, doc, MODEL)
        assert doc == loads(json.dumps(generated)), "from_tmf changed its input"
        # the canonical form holds only what its schema accepts; each gap is a warning
        flagged = [w for w in warnings if "incomplete" in w or "left as it came" in w]
        for path, message in MODEL.validator(spec.canonical_schema).errors(json.loads(dumps(canonical))):
            assert any(w.startswith(path) for w in flagged), f"{path}: {message} not in {warnings}"
        # nothing silently lost: every value comes back in the TMF form or a warning names it
        tmf = loads(dumps(to_tmf(entity, canonical)))
        back = _leaves(tmf)
        moved = {_anywhere(p, v) for p, v in back.items()}  # an array item may move up when one goes
        for path, value in _leaves(doc).items():
            if not (path in back and _same(value, back[path])) and _anywhere(path, value) not in moved:
                assert _named(path, warnings), f"{_dotted(path)} = {value!r} lost without a warning"
        if flagged:
            return  # incomplete: the canonical model refuses it anyway, so its TMF form is not read back
        # the TMF form reads back to the same canonical document, without new corrections
        again, again_warnings = from_tmf(entity, tmf, MODEL)
        assert again == canonical
        assert not [w for w in again_warnings if "dropped" in w or "read as" in w]
        if not [w for w in warnings if "dropped" in w]:  # all kept: the TMF form is SID-valid again
            assert tmf_errors(schema_file, TMF_DIR, tmf) == []
        assert MODEL.validator(spec.canonical_schema).errors(json.loads(dumps(canonical))) == []

    check()
