"""Transforms: declarative mapping files compiled once (XPath, JMESPath, XSLT, a Python function).

``TransformRegistry(project_dir).get("crm/siebel_order_to_canonical").apply(message)`` returns the message
with the mapped body. See ``docs/transforms.md`` for the mapping file format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esb.registry import lazy_exports

if TYPE_CHECKING:
    from esb.transforms.base import Transform
    from esb.transforms.registry import TransformRegistry

#: Imported on first use: a route's XPath raw key needs only ``esb.transforms.xpathdialect``, and the
#: operators' commands should not pay for the mapping compiler.
__getattr__ = lazy_exports(
    __name__, {"Transform": "esb.transforms.base", "TransformRegistry": "esb.transforms.registry"}
)

__all__ = ["Transform", "TransformRegistry"]
