"""The environment a simulation runs in: free ports and throwaway credentials, never real secrets.

Endpoints name their passwords by environment variable (``password_env``). For `make run` and
`esb demo` the simulated peripheral systems and the hub must agree on them: every such variable that is
not set gets a random token for this process only, and the simulators read the same variables.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from esb.project import Project

#: Environment variables naming the ports the SOAP and REST listeners use (see config/systems.yaml).
PORT_VARIABLES = (
    "ESB_SOAP_PORT",
    "ESB_BILLING_PORT",
    "ESB_REST_PORT",
    "ESB_REST_CANCEL_PORT",
    "ESB_RIM_PORT",
    "ESB_OSS_PORT",
    "ESB_WORKORDER_PORT",
    "ESB_OSS_CC_PORT",
)


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The hub's own listeners, which take any free port when set to 0 (their URLs: console.json,
#: monitoring.json): a simulation's never compete for the defaults with a running hub or another simulation.
ANY_PORT = {"ESB_CONSOLE__PORT": "0", "ESB_MONITORING__PORT": "0"}


def choose_free_ports(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set every port variable to a free port in ``environ`` (default: os.environ), and the console's and
    monitoring's to any (:data:`ANY_PORT`); return what was set."""
    target = os.environ if environ is None else environ
    chosen = {name: str(free_port()) for name in PORT_VARIABLES} | ANY_PORT
    target.update(chosen)
    return chosen


def _password_variables(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "password_env" and isinstance(value, str):
                found.add(value)
            else:
                found |= _password_variables(value)
    elif isinstance(node, list):
        for item in node:
            found |= _password_variables(item)
    return found


def ensure_credentials(project: Project) -> dict[str, str]:
    """Give each ``password_env`` variable the project's endpoints name a random value if it is unset.

    Returns the variables it set. Only for simulations: a real deployment sets them itself.
    """
    names: set[str] = set()
    for endpoint in project.endpoints.values():
        names |= _password_variables(endpoint.model_dump())
    made = {name: secrets.token_urlsafe(18) for name in sorted(names) if not os.environ.get(name)}
    os.environ.update(made)
    return made


def password(variable: str) -> str:
    """The value of a credential variable (set by :func:`ensure_credentials` or by the operator)."""
    return os.environ[variable]
