"""Logging never carries message bodies or credentials, whoever configures the stdlib loggers."""

from __future__ import annotations

import io
import logging

import pytest
import structlog

from esb.logging import NEVER_DEBUG, configure_logging

ENVELOPE = "<wsse:UsernameToken><wsse:Password>s3cret-pw</wsse:Password></wsse:UsernameToken>"


def test_zeep_envelopes_stay_out_of_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """With the root logger at DEBUG, zeep's DEBUG envelope lines are dropped; its INFO lines still pass."""
    for name in NEVER_DEBUG:
        logging.getLogger(name).setLevel(logging.NOTSET)
    caplog.set_level(logging.DEBUG)  # an embedding application turning everything up
    saved = structlog.get_config()
    try:
        configure_logging("info", "console", stream=io.StringIO())
    finally:
        structlog.configure(**saved)  # structlog's set-up is process-wide: leave it as the other tests had it
    transports = logging.getLogger("zeep.transports")
    transports.debug("HTTP Post to %s:\n%s", "https://billing.example/ws", ENVELOPE)
    transports.info("zeep says something harmless")
    logging.getLogger("urllib3.connectionpool").debug("POST /ws?token=abc HTTP/1.1")
    assert "s3cret-pw" not in caplog.text
    assert "token=abc" not in caplog.text
    assert "zeep says something harmless" in caplog.text
    logging.getLogger("esb.test").debug("our own debug line")
    assert "our own debug line" in caplog.text, "only the listed libraries are held back"
