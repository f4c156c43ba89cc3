"""What an adapter is given when it makes a source or sink: settings, the project, the endpoint's name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from esb.settings import Settings


@dataclass(frozen=True)
class AdapterContext:
    """The hub-wide facts an adapter may need; never secrets beyond what settings resolved."""

    settings: Settings
    project_dir: Path
    endpoint: str
    """The endpoint's full name, ``system.endpoint`` (e.g. ``crm.orders_out``)."""

    @property
    def system(self) -> str:
        """The system part of the endpoint name (``crm``)."""
        return self.endpoint.split(".", 1)[0]
