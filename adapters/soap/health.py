"""``esb health`` for SOAP endpoints: is the peer's service reachable; does the hub's listener answer.

A called endpoint (no ``listen``): a TCP connect to the service address (the endpoint's ``address``, else
the WSDL port's ``soap:address``) within ``connect_timeout``, then ``GET <address>?wsdl`` within
``timeout`` (HTTP basic credentials when the endpoint uses them). Any HTTP answer means reachable, a
SOAP 405 or 500 included; 502/503/504 and our credentials refused (401/403 with basic) are degraded;
refused or silent is down. Nothing is called: no operation runs. Addresses are shown with passwords
masked, and credentials are never part of a detail.

A served endpoint (``listen``): the hub's listener answers on its host and port (``GET path?wsdl``
without credentials: 401 or 200 from the hub). When nothing listens, the detail says whether a hub runs
on this data directory at all.
"""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

from adapters.soap.config import SOAPEndpoint
from esb.context import AdapterContext
from esb.exceptions import ConfigError, mask_url

OK, DEGRADED, DOWN, UNKNOWN = "ok", "degraded", "down", "unknown"
LISTENER_TIMEOUT = 5.0
_UNAVAILABLE = {502: "bad gateway", 503: "service unavailable", 504: "gateway timeout"}


def endpoint_health(endpoint: SOAPEndpoint, context: AdapterContext) -> tuple[str, str]:
    """Return ``(status, detail)`` for ``endpoint`` (see the module docstring)."""
    if endpoint.listen is not None:
        return listener_health(endpoint, context)
    return service_health(endpoint, context)


def service_address(endpoint: SOAPEndpoint, context: AdapterContext) -> str:
    """Return the address a call goes to: ``address``, else the WSDL port's ``soap:address``."""
    if endpoint.address:
        return endpoint.address
    from adapters.soap.sink import endpoint_contract

    contract = endpoint_contract(endpoint, context)
    address = contract.operation(endpoint.service, endpoint.port, endpoint.operation).address
    if not address:
        raise ConfigError(f"{context.endpoint}: no address given and the WSDL's port has no soap:address")
    return str(address)


def tcp_probe(host: str, port: int, timeout: float) -> str | None:
    """Return None when ``host:port`` accepts a TCP connection within ``timeout``, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no TCP answer within {timeout:g}s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"service address {mask_url(url)!r} is not an http(s) URL")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _session(endpoint: SOAPEndpoint, context: AdapterContext) -> tuple[Any, str]:
    """Return a requests session with the endpoint's TLS (and basic credentials), and a note."""
    from adapters.soap.security import client_session

    note, password = "", None
    if endpoint.auth is not None and endpoint.auth.mode == "basic":
        try:
            password = endpoint.auth.password(context.project_dir)
        except ConfigError as exc:
            note = f"; credentials not checked ({exc})"
    return client_session(endpoint, context.project_dir, password).session, note


def service_health(endpoint: SOAPEndpoint, context: AdapterContext) -> tuple[str, str]:
    """The peer's service address accepts a connection and answers HTTP."""
    address = service_address(endpoint, context)
    shown = mask_url(address)
    host, port = _host_port(address)
    problem = tcp_probe(host, port, endpoint.connect_timeout)
    if problem is not None:
        return DOWN, f"{shown}: {problem}"
    import requests

    session, note = _session(endpoint, context)
    started = time.monotonic()
    try:
        response = session.get(
            address.split("?", 1)[0] + "?wsdl",
            allow_redirects=False,
            timeout=(endpoint.connect_timeout, endpoint.timeout),
        )
    except requests.Timeout:
        return DOWN, f"{shown}: connected, but no HTTP answer within {endpoint.timeout:g}s"
    except requests.RequestException as exc:
        return DOWN, f"{shown}: {type(exc).__name__} ({_reason(exc)})"
    finally:
        session.close()
    took = round((time.monotonic() - started) * 1000)
    code = response.status_code
    if code in _UNAVAILABLE:
        return DEGRADED, f"{shown}: HTTP {code} ({_UNAVAILABLE[code]}){note}"
    if code in (401, 403) and session.auth is not None:
        return DEGRADED, f"{shown}: reachable, but HTTP {code} with our credentials: check them{note}"
    return OK, f"{shown}: reachable (HTTP {code} to GET ?wsdl in {took} ms){note}"


def _reason(exc: BaseException) -> str:
    """The innermost cause's class name (requests' messages repeat the URL, which may carry secrets)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return type(exc).__name__


def listener_health(endpoint: SOAPEndpoint, context: AdapterContext) -> tuple[str, str]:
    """The hub's own listener for this operation answers on its host and port."""
    listen = endpoint.listen
    assert listen is not None
    if listen.port == 0:
        return UNKNOWN, "listens on port 0 (any free port, chosen at start): nothing to check"
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(listen.host, listen.host)  # noqa: S104 - mapped to loopback
    where = f"http://{'[' + host + ']' if ':' in host else host}:{listen.port}{listen.path}"
    problem = tcp_probe(host, listen.port, LISTENER_TIMEOUT)
    if problem is not None:
        pid = context.services.running_hub()
        if pid is None:
            return DEGRADED, (
                f"{where}: {problem}: no hub is running on this data directory "
                "(start it with `esb run`), so the listener is not served"
            )
        return DOWN, (
            f"{where}: {problem}, although the hub runs (pid {pid}): the listener did not "
            "start or its route is not run by this hub (see the hub's log)"
        )
    import requests

    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between us and a loopback listener
    try:
        response = session.get(where + "?wsdl", timeout=LISTENER_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        return DOWN, f"{where}: connected, but no HTTP answer ({_reason(exc)})"
    finally:
        session.close()
    code = response.status_code
    if code in (200, 401):
        return OK, f"{where}: the hub's listener answers (HTTP {code} to GET ?wsdl)"
    return DEGRADED, f"{where}: HTTP {code} to GET ?wsdl: something answers there, but not this service"
