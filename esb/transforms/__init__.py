"""Transforms: declarative mapping files compiled once (XPath, JMESPath, XSLT, a Python function).

``TransformRegistry(project_dir).get("crm/siebel_order_to_canonical").apply(message)`` returns the message
with the mapped body. See ``docs/transforms.md`` for the mapping file format.
"""

from __future__ import annotations

from esb.transforms.base import Transform
from esb.transforms.registry import TransformRegistry

__all__ = ["Transform", "TransformRegistry"]
