"""The console's web stack (issue 18): Flask on waitress against Starlette on uvicorn, measured alike.

One paged page as the console serves them: 50 rows of a 100,000-row SQLite table (a new connection per
request, like a page's query), rendered by Jinja2 with autoescaping, a plain synchronous view (our ops
code is synchronous: Starlette runs such a view in its thread pool). Sequential GETs over keep-alive
after a warm-up; p50 and p99 per stack, and the time to import each stack in a fresh interpreter.
Starlette and uvicorn are not project dependencies: install them beside to compare
(``pip install starlette uvicorn``); a stack that is not installed prints ``not installed``.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

TEMPLATE = """<!doctype html><html><body><h1>Dead letters</h1><table>
{% for r in rows %}<tr><td>{{ r[0] }}</td><td>{{ r[1] }}</td><td>{{ r[2] }}</td><td>{{ r[3] }}</td></tr>
{% endfor %}</table><a href="?offset={{ offset + 50 }}">next</a></body></html>"""
IMPORTS = {
    "flask+waitress": "import flask, jinja2, waitress",
    "starlette+uvicorn": "import starlette.applications, starlette.middleware.sessions, jinja2, uvicorn",
}


def make_table(path: Path) -> None:
    """100,000 journal-like rows, one with markup that must come out escaped."""
    with sqlite3.connect(path) as conn:
        conn.execute("create table m (id integer primary key, mid text, route text, state text, err text)")
        conn.executemany("insert into m (mid, route, state, err) values (?, ?, ?, ?)",
                         [(f"msg-{i:08d}", "crm-order-to-iom", "dead_lettered", "schema: <b>x</b> & y")
                          for i in range(100_000)])


def page_rows(path: Path, offset: int) -> list[tuple[str, ...]]:
    """One page of rows (a connection per request, as a page's query)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("select mid, route, state, err from m order by id limit 50 offset ?",
                            (offset,)).fetchall()
    finally:
        conn.close()


def serve_flask(path: Path, port: int) -> None:
    """The page on Flask, served by waitress (4 threads) in a thread."""
    import waitress
    from flask import Flask, render_template_string, request

    app = Flask("bench")

    @app.get("/page")
    def page() -> str:
        offset = int(request.args.get("offset", 0))
        return render_template_string(TEMPLATE, rows=page_rows(path, offset), offset=offset)

    server = waitress.create_server(app, host="127.0.0.1", port=port, threads=4)
    threading.Thread(target=server.run, daemon=True).start()


def serve_starlette(path: Path, port: int) -> None:
    """The page on Starlette (a synchronous view), served by uvicorn in a thread."""
    import jinja2
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    template = jinja2.Environment(autoescape=True).from_string(TEMPLATE)

    def page(request: Request) -> HTMLResponse:
        offset = int(request.query_params.get("offset", 0))
        return HTMLResponse(template.render(rows=page_rows(path, offset), offset=offset))

    config = uvicorn.Config(Starlette(routes=[Route("/page", page)]), host="127.0.0.1", port=port,
                            log_level="warning")
    threading.Thread(target=uvicorn.Server(config).run, daemon=True).start()


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(port: int, count: int = 2000) -> tuple[float, float]:
    """p50 and p99 (ms) of ``count`` sequential GETs over one keep-alive session."""
    http = requests.Session()
    deadline = time.monotonic() + 10
    while True:
        try:
            http.get(f"http://127.0.0.1:{port}/page", timeout=5)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    for _ in range(50):
        http.get(f"http://127.0.0.1:{port}/page?offset=500", timeout=5)
    latencies = []
    for i in range(count):
        began = time.perf_counter()
        answer = http.get(f"http://127.0.0.1:{port}/page?offset={(i % 100) * 50}", timeout=5)
        latencies.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200
        assert "&lt;b&gt;" in answer.text
    latencies.sort()
    return latencies[count // 2], latencies[int(count * 0.99)]


def import_ms(statement: str, runs: int = 5) -> float:
    """The median time to run ``statement`` in a fresh interpreter (ms)."""
    times = []
    for _ in range(runs):
        code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(out.stdout) * 1000)
    return sorted(times)[runs // 2]


def main() -> int:
    """Serve the page on each installed stack, measure, print."""
    work = Path(tempfile.mkdtemp(prefix="stack-bench-"))
    table = work / "rows.db"
    make_table(table)
    stacks: dict[str, Callable[[Path, int], None]] = {"flask+waitress": serve_flask,
                                                      "starlette+uvicorn": serve_starlette}
    print(f"{'stack':<20} {'p50 ms':>8} {'p99 ms':>8} {'import ms':>10}")
    for name, serve in stacks.items():
        port = free_port()
        try:
            serve(table, port)
        except ImportError:
            print(f"{name:<20} not installed")
            continue
        p50, p99 = measure(port)
        print(f"{name:<20} {p50:8.2f} {p99:8.2f} {import_ms(IMPORTS[name]):10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
