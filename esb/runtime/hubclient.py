"""Asking the hub running on this data directory (``esb health``): its monitoring address, token, answer.

The running hub's listener (:mod:`esb.runtime.monitoring`) writes its address and token to
``{data_dir}/monitoring.json``; this side reads them and asks over loopback HTTP. It imports neither the
listener (``http.server``, the logger) nor, unless a hub's file is there, ``urllib.request``: a cold
``esb health`` with no hub running pays for neither.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from esb.config.settings import Settings

INFO_FILE = "monitoring.json"


def info_path(settings: Settings) -> Path:
    """Return where a running hub writes its monitoring address and token."""
    return settings.data_dir / INFO_FILE


def ask_running_hub(
    settings: Settings, path: str = "/health/ready", timeout: float = 3.0
) -> tuple[int, bytes]:
    """GET ``path`` from the hub running on this data directory; (status, body). OSError if none runs."""
    info = orjson.loads(info_path(settings).read_bytes())
    token = settings.monitoring.token or info["token"]
    url = str(info["url"])
    if not url.startswith(("http://127.", "http://[::1]", "http://localhost")):
        raise OSError(f"{info_path(settings)}: {url!r} is not a loopback address")
    import urllib.error  # a hub's file is there: ask it
    import urllib.request

    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback http only
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
