"""Errors of the batch adapter, in the hub's error tree, and the one place library errors are translated.

::

    ConfigError
    └── LayoutError            a layout file that cannot be used (names file:field)
    MessageError
    └── BadFileError           the whole file is refused (encoding, trailer, counts, totals, empty...)
        └── UnsafeNameError    a remote name with a path separator, "..", a NUL or a control character
    TransportError
    └── RemoteTransferError    a transfer broke off (connection dropped, short file): retried next poll
        └── HostKeyError       SFTP host key unknown or changed (not retryable: fix known_hosts)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from esb.exceptions import ConfigError, MessageError, TransportError


class LayoutError(ConfigError):
    """A layout file is missing, malformed or inconsistent."""


class BadFileError(MessageError):
    """A batch file refused as a whole: it goes to ``error/`` with this message beside it."""

    reason = "bad-batch-file"


class UnsafeNameError(BadFileError):
    """A remote file name that could escape its folder or hide itself: never downloaded."""

    reason = "unsafe-file-name"


class RemoteTransferError(TransportError):
    """A download, upload, listing or rename failed; the poller tries again on its next run."""


class HostKeyError(RemoteTransferError):
    """The SFTP server's host key is not in known_hosts, or changed: refused, never added."""

    retryable = False


@contextlib.contextmanager
def translated(what: str, endpoint: str) -> Iterator[None]:
    """Turn paramiko, ftplib, socket and OS errors raised inside the block into RemoteTransferError."""
    import ftplib  # imported here: the adapter loads without paramiko, ftplib or ssl for local folders
    import ssl

    import paramiko

    try:
        yield
    except (HostKeyError, RemoteTransferError, BadFileError):
        raise
    except paramiko.BadHostKeyException as exc:
        raise HostKeyError(
            f"{what}: the server's host key CHANGED (expected {exc.expected_key.get_fingerprint().hex()}, "
            f"got {exc.key.get_fingerprint().hex()}): refused; check the server, then known_hosts",
            endpoint=endpoint,
        ) from exc
    except paramiko.SSHException as exc:
        if "not found in known_hosts" in str(exc) or ("Server " in str(exc) and "not found" in str(exc)):
            raise HostKeyError(
                f"{what}: the server's host key is not in known_hosts: refused ({exc})", endpoint=endpoint
            ) from exc
        raise RemoteTransferError(f"{what}: SSH error: {exc}", endpoint=endpoint) from exc
    except ssl.SSLCertVerificationError as exc:
        raise HostKeyError(
            f"{what}: FTPS certificate refused: {exc.verify_message}", endpoint=endpoint
        ) from exc
    except (TimeoutError, ftplib.Error, EOFError, ssl.SSLError) as exc:
        raise RemoteTransferError(f"{what}: {type(exc).__name__}: {exc}", endpoint=endpoint) from exc
    except OSError as exc:
        raise RemoteTransferError(f"{what}: {exc}", endpoint=endpoint) from exc
