"""Where the REST listener's CPU per order goes: the POST path's stages timed one by one, in one thread.

A ``channel.rest_orders`` listener is connected (its store, inbox and server as ``rest_bench.py`` makes
them; no load, no route thread) and ``--orders`` TMF622 orders are taken through each stage of
``RESTApp.create`` in turn, each stage's loop timed with ``time.thread_time`` (CPU of this thread):

- ``throttle``: the lockout check of the client's address;
- ``auth``: the basic credentials (base64, constant-time compare);
- ``body+json``: the Content-Type check, the capped read and the JSON parse (orjson);
- ``schema``: the TMF622 validation (jsonschema-rs);
- ``resource``: the id, the resource with its href, the message headers, the create event, their JSON;
- ``store``: the one-statement write of the order, its create event and inbox row (autocommit);
- ``route``: the route's side, each order read from the inbox as a Delivery and acked (deletes batched);
  the store's, the route's and the app's loops alternate in steps of the inbox's batch (64 orders), so
  the inbox stays as small as it is under load;
- ``app``: the whole WSGI call (``RESTApp.__call__``: the stages above but the route, with
  ``start_response``) on a prepared environ, for comparison with their sum.

Then ``--seconds`` of the raw load (``rest_bench.py``'s) on the listener and on the bare handler give
the server process's CPU per order under load; what the stages do not explain is cheroot's work (the
bare handler's whole request, plus whatever the listener adds to it: threads, the GIL changing hands).
``--tree DIR`` runs another checkout's adapters; ``--json`` prints one JSON line.

    .venv/bin/python bench/rest_profile.py [--orders 3000] [--seconds 3] [--tree DIR] [--json]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
import rest_bench  # puts --tree's checkout first on sys.path

from simulators.channel import tmf_order, to_json


def _environ(path: str, body: bytes, auth: str) -> dict[str, Any]:
    """A POST to ``path`` as cheroot hands it to the app."""
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": path,
        "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)), "HTTP_AUTHORIZATION": auth, "wsgi.input": io.BytesIO(body),
    }  # fmt: skip


def _timed(loop: Callable[[], None]) -> float:
    cpu = time.thread_time()
    loop()
    return time.thread_time() - cpu


def stages(orders: int, data_dir: Path) -> dict[str, float]:
    """µs of this thread's CPU per order for each stage of the POST path (see the module's doc)."""
    import base64

    from adapters.rest import resources
    from adapters.rest.app import RESTApp
    from adapters.rest.auth import authenticate
    from adapters.rest.config import RESTEndpoint
    from adapters.rest.events import CREATE, make_event
    from adapters.rest.inbox import BATCH
    from adapters.rest.source import RESTSource
    from adapters.rest.store import InboxRow
    from esb.config.settings import Settings
    from esb.context import AdapterContext
    from esb.telemetry import wsgi_trace_headers

    os.environ["BENCH_REST_PASSWORD"] = rest_bench.AUTH[1]

    endpoint = RESTEndpoint.model_validate(
        {"adapter": "rest", "listen": {"port": 0, "auth": {"users": [
            {"username": rest_bench.AUTH[0], "password_env": "BENCH_REST_PASSWORD"}]}}}
    )  # fmt: skip
    context = AdapterContext(Settings(data_dir=data_dir), rest_bench._tree(), "channel.rest_orders")
    source = RESTSource(endpoint, context)
    source.connect()
    assert source.server is not None
    served = source.server.served
    app = RESTApp(served)
    auth = "Basic " + base64.b64encode(":".join(rest_bench.AUTH).encode()).decode()
    rng = random.Random(13)
    run = time.monotonic_ns()
    templates = []
    for i in range(50):
        order = tmf_order(i, rng)
        order["id"] = "@@ID@@"
        templates.append(to_json(order))
    bodies = [templates[n % 50].replace(b"@@ID@@", f"P{run}-{n}".encode()) for n in range(orders)]
    app_bodies = [templates[n % 50].replace(b"@@ID@@", f"Q{run}-{n}".encode()) for n in range(orders)]
    path = served.options.base_path + "/productOrder"
    environs = [_environ(path, body, auth) for body in bodies]
    docs: list[dict[str, Any]] = []
    made: list[tuple[Any, ...]] = []
    users, modes, kind = served.users, list(served.options.auth.modes), "productOrder"
    checker = served.checkers.get(kind)
    out: dict[str, float] = {}

    def throttle() -> None:
        for environ in environs:
            served.audit.throttle.locked(str(environ.get("REMOTE_ADDR") or "unknown"))

    def credentials() -> None:
        for environ in environs:
            authenticate(environ, users, modes)

    def body_json() -> None:
        for environ in environs:
            resources.check_content_type(environ.get("CONTENT_TYPE"))
            data = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
            docs.append(resources.parse_document(data))

    def schema() -> None:
        for doc in docs:
            resources.check_schema(kind, doc, checker)

    def resource() -> None:
        for data, doc in zip(bodies, docs, strict=True):
            ident, body = resources.with_id(data, doc)
            created = resources.created(kind, doc, ident, served.href(kind, ident))
            headers = {"tmf-resource": kind, "tmf-id": ident, "rest-user": rest_bench.AUTH[0],
                       "content-type": "application/json", **wsgi_trace_headers({})}  # fmt: skip
            event = make_event(kind, CREATE, created, ident)
            made.append((ident, orjson.dumps(created), event, body, orjson.dumps(headers).decode()))

    def store(chunk: list[tuple[Any, ...]]) -> None:
        inbox = served.inbox
        for ident, answer, event, body, wire in chunk:
            claim, now = inbox.claim_for_new(), time.time()
            served.store.create(kind, ident, answer, event, ident, body, wire, claim, now)
            if claim is not None:
                inbox.offer(InboxRow(kind, ident, event["eventId"], body, wire, ident, now, 1))

    def route(chunk: list[Any]) -> None:
        for _ in chunk:
            delivery = source.read(0)
            assert delivery is not None, "the inbox lost an order"
            delivery.ack()
        served.inbox._flush()  # settle this chunk's orders here (a reader does it at its next read)

    answered: list[str] = []

    def whole(chunk: list[bytes]) -> None:
        for body in chunk:
            app(_environ(path, body, auth), lambda status, headers, exc_info=None: answered.append(status))

    for name, loop in (("throttle", throttle), ("auth", credentials), ("body+json", body_json),
                       ("schema", schema), ("resource", resource)):  # fmt: skip
        out[name] = _timed(loop) / orders * 1e6
    # the store, the route and the whole app in steps of the inbox's settling batch, so that the inbox
    # stays as small as under load (the route keeps up) instead of growing to ``orders`` rows
    out["store"] = out["route"] = out["app"] = 0.0
    for at in range(0, orders, BATCH):
        out["store"] += _timed(partial(store, made[at : at + BATCH]))
        out["route"] += _timed(partial(route, made[at : at + BATCH]))
        out["app"] += _timed(partial(whole, app_bodies[at : at + BATCH]))
        route(app_bodies[at : at + BATCH])  # the whole app's orders, untimed
    for name in ("store", "route", "app"):
        out[name] = out[name] / orders * 1e6
    assert answered == ["201 Created"] * orders, f"the app refused orders: {set(answered)}"
    source.close()
    return out


def main() -> None:
    """Print the stages' CPU per order, then the servers' CPU per order under the raw load."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=3.0, help="raw load window; 0: stages only")
    parser.add_argument("--tree", type=Path, default=rest_bench.ROOT)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="esb-rest-profile-") as folder:
        gc.freeze()  # as ``esb run`` does once the project is loaded (esb/startup.py)
        figures: dict[str, float] = stages(args.orders, Path(folder) / "stages")
        figures["sum"] = sum(v for k, v in figures.items() if k != "app")
        if args.seconds > 0:
            bare, bare_url = rest_bench.bare_server(rest_bench._default_threads())
            source, url, routed = rest_bench.listener(Path(folder) / "load", rest_bench._default_threads())
            gc.freeze()
            try:
                bare_run = rest_bench.measure(bare_url, "raw", args.seconds, 4)
                listener_run = rest_bench.measure(url, "raw", args.seconds, 4, routed=routed)
                figures["bare_http"], figures["listener_http"] = bare_run["cpu_us"], listener_run["cpu_us"]
            finally:
                source.close()
                bare.stop()
            figures["cheroot+threads"] = figures["listener_http"] - figures["app"] - figures["route"]
        figures["load_avg"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"tree": str(args.tree), **figures}))
        return
    for name, value in figures.items():
        print(f"{name:16} {value:8.1f}" + ("" if name == "load_avg" else " µs/order"))


if __name__ == "__main__":
    main()
