"""esb: an enterprise integration hub for a telecom operator's BSS."""

from __future__ import annotations

__version__ = "0.1.0"
