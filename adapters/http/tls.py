"""TLS files checked once, at connect, as OpenSSL will load them: a broken file is a ConfigError."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from adapters.http.options import TLSOptions
from esb.exceptions import ConfigError, mask_url


def absolute(path: Path | None, project_dir: Path) -> Path:
    """``path`` made absolute against the project folder."""
    assert path is not None
    return path if path.is_absolute() else project_dir / path


def check_tls(tls: TLSOptions | None, address: str | None, project_dir: Path, endpoint: str) -> None:
    """Load the endpoint's CA file and client certificate once, as OpenSSL will; ConfigError if unusable.

    The error names the option and the path, never a file's content. An encrypted key is refused (the
    hub cannot be prompted for its passphrase). TLS options on an ``http://`` address are refused too:
    the call would go unencrypted while the configuration says otherwise.
    """
    if tls is None:
        return
    if address is not None and not address.lower().startswith("https://"):
        raise ConfigError(f"{endpoint}: tls: is set but the address is not https:// ({mask_url(address)})")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls.ca_file is not None:
        ca = absolute(tls.ca_file, project_dir)
        _load(f"{endpoint}: tls.ca_file {ca}", lambda: context.load_verify_locations(ca))
    if tls.cert_file is not None:
        cert = absolute(tls.cert_file, project_dir)
        key = absolute(tls.key_file, project_dir) if tls.key_file is not None else None
        where = f"{endpoint}: tls.cert_file {cert}" + (f", tls.key_file {key}" if key is not None else "")
        _load(where, lambda: context.load_cert_chain(cert, key, password=_no_passphrase))


class _EncryptedKey(Exception):  # noqa: N818 - a signal from OpenSSL's password callback, not an error
    pass


def _no_passphrase() -> str:
    raise _EncryptedKey


def _load(where: str, load: Any) -> None:
    try:
        load()
    except _EncryptedKey:
        raise ConfigError(f"{where}: the private key is encrypted: give an unencrypted key file") from None
    except ssl.SSLError as exc:
        raise ConfigError(f"{where}: not usable: {getattr(exc, 'reason', None) or exc.strerror}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read: {exc.strerror}") from None
