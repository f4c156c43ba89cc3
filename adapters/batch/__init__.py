"""The batch adapter: staged FTP/SFTP/FTPS/local batch files, in (records as messages) and out (files).

See docs/batch.md. ``adapter: batch`` endpoints are validated by :class:`BatchEndpoint`; an endpoint with
``inbound`` is a route's ``from`` (one Delivery per record), one with ``outbound`` a route's ``to``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.batch.config import BatchEndpoint
from esb.message import Message
from esb.registry import lazy_exports

if TYPE_CHECKING:
    from adapters.batch.sink import BatchSink
    from adapters.batch.source import BatchSource
    from esb.config.systems import EndpointConfig
    from esb.typing import FetchedExtract

#: The source and sink are imported on first use (their protocol libraries are heavy).
__getattr__ = lazy_exports(
    __name__, {"BatchSink": "adapters.batch.sink", "BatchSource": "adapters.batch.source"}
)

__all__ = ["BatchAdapter", "BatchEndpoint", "BatchSink", "BatchSource"]


class BatchAdapter:
    """Makes sources and sinks for ``adapter: batch`` endpoints."""

    name = "batch"

    def endpoint_model(self) -> type[BatchEndpoint]:
        """Return the endpoint model."""
        return BatchEndpoint

    def source(self, endpoint: BatchEndpoint, context: Any) -> BatchSource:
        """Return an unconnected source (the endpoint needs ``inbound``)."""
        from adapters.batch.source import BatchSource

        return BatchSource(endpoint, context)

    def sink(self, endpoint: BatchEndpoint, context: Any) -> BatchSink:
        """Return an unconnected sink (the endpoint needs ``outbound``)."""
        from adapters.batch.sink import BatchSink

        return BatchSink(endpoint, context)

    def collects(self, endpoint: BatchEndpoint) -> bool:
        """``esb receive``: an outbound endpoint is an outbox (its remote folder holds files for the peer)."""
        return endpoint.outbound is not None

    def collect(
        self,
        endpoint: BatchEndpoint,
        context: Any,
        limit: int,
        on_message: Callable[[Message], None],
        *,
        consume: bool = False,
    ) -> int:
        """``esb receive``: the complete files waiting in an outbound endpoint's folder, oldest first."""
        from adapters.batch.outbox import collect

        return collect(endpoint, context, limit, on_message, consume=consume)

    def write_file(
        self,
        endpoint: BatchEndpoint,
        context: Any,
        records: Iterable[dict[str, Any]],
        now: datetime | None = None,
    ) -> tuple[str, int]:
        """``esb full-file``: stream ``records`` into one new file of an outbound endpoint and upload it
        (its own file, not the outbox's; no scheduler, no election: the caller runs it once)."""
        from adapters.batch.sink import BatchSink

        with BatchSink(endpoint, context, schedule=False) as sink:
            return sink.write_file(records, now)

    def health(self, endpoint: BatchEndpoint, context: Any) -> tuple[str, str]:
        """``esb health``: the remote folder is reachable (SFTP host key, login, listing; local: writable)."""
        from adapters.batch.health import endpoint_health

        return endpoint_health(endpoint, context)

    def endpoint_problems(
        self,
        endpoint: BatchEndpoint,
        endpoints: Mapping[str, EndpointConfig],
        project_dir: Path | None = None,
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """``esb lint``: ``outbound.ack.endpoint`` is an inbound batch endpoint; the layout file loads."""
        from adapters.batch.lint import ack_problems, layout_problems

        return [*ack_problems(endpoint, endpoints), *layout_problems(endpoint, project_dir)]

    def commands(self) -> list[Any]:
        """``esb batch acks ENDPOINT``."""
        from adapters.batch.cli import batch

        return [batch]

    def jobs(self, endpoint: BatchEndpoint, context: Any) -> list[dict[str, Any]]:
        """``esb health``: the endpoint's scheduled jobs with their last and next run."""
        from adapters.batch.health import endpoint_jobs

        return endpoint_jobs(endpoint, context)

    def extract_blocks(
        self, endpoint: BatchEndpoint, context: Any, path: Path
    ) -> tuple[
        Iterator[tuple[int, list[bytes]]], Callable[[int, bytes], tuple[dict[str, Any] | None, str | None]]
    ]:
        """``esb sync``: a full extract in the endpoint's layout, checked whole first, then its detail
        records as raw bytes in blocks (the first numbered from 1) and the function that parses one."""
        from adapters.batch.extracts import extract_blocks

        return extract_blocks(endpoint, context, path)

    def fetches_extracts(self, endpoint: BatchEndpoint) -> bool:
        """A scheduled resync fetches its extract when the folder is remote (SFTP, FTP); a local one is
        read in place."""
        return endpoint.remote.protocol != "local"

    def fetch_extract(self, endpoint: BatchEndpoint, context: Any) -> FetchedExtract | None:
        """A scheduled resync: the newest complete extract of the remote folder, staged locally (None: no
        new one). See adapters/batch/fetch.py."""
        from adapters.batch.fetch import fetch_extract

        return fetch_extract(endpoint, context)

    def extract_done(
        self, endpoint: BatchEndpoint, context: Any, fetched: FetchedExtract, error: str | None
    ) -> None:
        """Record that the resync of a fetched extract ended (or failed: fetched again next time)."""
        from adapters.batch.fetch import extract_done

        extract_done(endpoint, context, fetched, error)
