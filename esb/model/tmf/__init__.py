"""Conversion between the canonical model and its TM Forum Open API v4 form (see :mod:`.convert`)."""

from __future__ import annotations

from esb.model.tmf.convert import TMFConversionError, dumps, entity_spec, from_tmf, loads, to_tmf
from esb.model.tmf.entities import ALIASES, ENTITIES, StateField, TMFEntity

__all__ = [
    "ALIASES",
    "ENTITIES",
    "StateField",
    "TMFConversionError",
    "TMFEntity",
    "dumps",
    "entity_spec",
    "from_tmf",
    "loads",
    "to_tmf",
]
