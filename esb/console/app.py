"""The console's Flask application: login, roles, CSRF on every POST, security headers, pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from flask import Flask, abort, current_app, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from esb.console.security import CSRF_FIELD, CSRF_HEADER, HEADERS, csrf_ok, csrf_token
from esb.console.state import ConsoleState
from esb.console.users import User, authenticate

_HERE = Path(__file__).parent
#: Pages anyone may see: the login form and the static files.
_OPEN = {"login", "static"}
F = TypeVar("F", bound=Callable[..., Any])


def state() -> ConsoleState:
    """Return the console's shared objects (inside a request)."""
    return cast(ConsoleState, current_app.extensions["esb_console"])


def current_user() -> User:
    """Return the logged-in user (inside a request that passed the login check)."""
    return cast(User, g.user)


def operator_only(view: F) -> F:
    """Refuse the view (403) to a user whose role may not act."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not current_user().may_act():
            abort(403, "your role (viewer) may look but not act: ask an operator")
        return view(*args, **kwargs)

    return cast(F, guarded)


def create_app(console: ConsoleState) -> Flask:
    """Return the console application over ``console``."""
    app = Flask(__name__, template_folder=str(_HERE / "templates"), static_folder=str(_HERE / "static"))
    app.config.update(
        SECRET_KEY=console.session_key,
        SESSION_COOKIE_NAME="esb_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=console.settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=console.settings.session_lifetime),
        MAX_CONTENT_LENGTH=256 * 1024,
    )
    app.extensions["esb_console"] = console
    app.jinja_env.globals["csrf_token"] = lambda: csrf_token(session)
    app.jinja_env.globals["CSRF_FIELD"] = CSRF_FIELD
    app.jinja_env.filters["merge_args"] = lambda args, **changes: urlencode({**args.to_dict(), **changes})
    app.before_request(_guard)
    app.after_request(_headers)
    app.add_url_rule("/login", "login", _login, methods=["GET", "POST"])
    app.add_url_rule("/logout", "logout", _logout, methods=["POST"])
    from esb.console.actions import actions
    from esb.console.pages import pages

    app.register_blueprint(pages)
    app.register_blueprint(actions)
    for code in (400, 403, 404, 405, 413, 429, 500):
        app.register_error_handler(code, _error)
    return app


def _guard() -> Response | None:
    """Every request: a CSRF token on every POST, a login on every page but the login form."""
    if request.method == "POST" and not csrf_ok(session, request.form.get(CSRF_FIELD)
                                                 or request.headers.get(CSRF_HEADER)):
        abort(400, "the form's CSRF token is missing or stale: reload the page and try again")
    if request.endpoint in _OPEN:
        return None
    user = state().users.get(session.get("user", ""))
    if user is None or session.get("role") != user.role:
        if request.path.startswith("/api/"):
            abort(403, "log in first")
        return redirect(url_for("login", next=request.full_path if request.args else request.path))
    g.user = user
    return None


def _headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _login() -> Any:
    """The login form; a name or client with too many failures is refused for a while."""
    console = state()
    error = None
    if request.method == "POST":
        name = request.form.get("username", "")[:64]
        keys = (f"user:{name}", f"client:{request.remote_addr}")
        wait = console.throttle.blocked_for(*keys)
        if wait > 0:
            text = f"too many failed logins: try again in {wait:.0f} s"
            return render_template("login.html", error=text), 429
        user = authenticate(console.users, name, request.form.get("password", ""))
        if user is None:
            console.throttle.failed(*keys)
            error = "wrong user name or password"
        else:
            console.throttle.succeeded(*keys)
            session.clear()  # a fresh session (and CSRF token) at each login
            session.permanent = True
            session["user"], session["role"] = user.name, user.role
            return redirect(_local(request.args.get("next", "")))
    return render_template("login.html", error=error), 401 if error else 200


def _local(target: str) -> str:
    """``target`` when it is a path on this site, else ``/`` (no open redirect after login)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _logout() -> Response:
    session.clear()
    return redirect(url_for("login"))


def _error(exc: Any) -> Any:
    code = getattr(exc, "code", 500)
    text = getattr(exc, "description", str(exc))
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return {"error": text}, code
    return render_template("error.html", code=code, text=text), code
