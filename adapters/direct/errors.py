"""Errors of the direct adapter, in the hub's error tree."""

from __future__ import annotations

from esb.exceptions import TransportError


class NoHandlerError(TransportError):
    """A request went to a direct channel that has no handler registered (yet)."""
