"""Validation of TMF documents against the TM Forum SID JSON schemas (draft-07), read from a folder.

The schemas are not part of the project (licence: copies stay unmodified, outside): the folder is
``$ESB_TMF_SCHEMAS`` or ``<project>/../shared/tmf-schemas``. Each file is registered under
``BASE + <folder>/<File>.schema.json`` so its relative ``$ref``s (``../Common/Note.schema.json#Note``)
resolve through the retriever; nothing is fetched from the network.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT7

BASE = "https://tmf.schemas.local/"

#: published SID class files whose own ``$ref`` does not resolve, and the class as TMF's API defines it
#: (``$ref``s relative to the schema folder). CancelProductOrder.schema.json refers to ``#CancelOrder``
#: in Common/EntityRef.schema.json, which defines no such class: TMF622 defines CancelProductOrder as
#: the CancelOrder task (Product/CancelOrder) plus the order to cancel.
ERRATA: dict[str, dict[str, Any]] = {
    "Product/CancelProductOrder": {
        "type": "object",
        "allOf": [{"$ref": "Product/CancelOrder.schema.json#CancelOrder"}],
        "properties": {"productOrder": {"$ref": "Customer/ProductOrderRef.schema.json#ProductOrderRef"}},
        "required": ["productOrder"],
    },
}


def tmf_schemas_dir(project: Path | None = None) -> Path:
    """Return the SID schema folder (``$ESB_TMF_SCHEMAS``, else ``<project>/../shared/tmf-schemas``)."""
    env = os.environ.get("ESB_TMF_SCHEMAS")
    if env:
        return Path(env)
    return ((project or Path.cwd()) / ".." / "shared" / "tmf-schemas").resolve()


@cache
def _registry(root: Path) -> Registry[Any]:
    def retrieve(uri: str) -> Resource[Any]:
        if not uri.startswith(BASE):
            raise NoSuchResource(uri)
        path = root / uri.removeprefix(BASE)
        try:
            return Resource.from_contents(json.loads(path.read_text(encoding="utf-8")), DRAFT7)
        except OSError as exc:
            raise NoSuchResource(uri) from exc

    return Registry(retrieve=retrieve)  # type: ignore[call-arg]


def class_schema(schema_file: str) -> dict[str, Any]:
    """Return the schema of the class in ``<folder>/<Class>``, its ``$ref``s relative to the folder."""
    cls = schema_file.rsplit("/", 1)[-1]
    return ERRATA.get(schema_file) or {"$ref": f"{schema_file}.schema.json#{cls}"}


def tmf_validator(schema_file: str, root: Path) -> Draft7Validator:
    """Return a validator for the class defined in ``<folder>/<Class>`` (``Customer/ProductOrder``)."""
    schema = {"$id": BASE, "allOf": [class_schema(schema_file)]}  # draft-07 ignores $ref siblings
    return Draft7Validator(schema, registry=_registry(root))


def tmf_errors(schema_file: str, root: Path, doc: Any) -> list[tuple[str, str]]:
    """Return ``(json_path, message)`` for every way ``doc`` breaks the TMF schema."""
    errors = tmf_validator(schema_file, root).iter_errors(doc)
    return sorted((e.json_path, e.message) for e in errors)
