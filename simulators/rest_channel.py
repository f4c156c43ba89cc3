"""The simulated sales-channel system's REST client: POSTs TMF622 orders to the hub's productOrder API.

The same orders as the queue scenario (simulators/channel.py), each with the message id as its order id
(the listener makes the order id the message id). Orders the TMF schema refuses at the hub's edge (a
capitalised or unknown state, a party without ``@referredType``, invalid JSON) never reach the route:
they are not planned but sent beside the planned ones, with a wrong password now and then, and each
must get its 400 or 401 with TMF's error JSON (else the scenario reports a problem).
"""

from __future__ import annotations

import threading
from typing import Any

from esb.message import Message
from esb.model.tmf import loads
from simulators.channel import channel_order_scenario, to_json
from simulators.crm import PlannedMessage
from simulators.devenv import password
from simulators.order_flows import OrdersToIOMScenario

#: what every message (and order) id of this scenario contains (``<run>-restchannel-000042``)
ID_MARK = "-restchannel-"
#: channel scenario kinds that pass the TMF schema at the edge and so reach the route
REACHES_ROUTE = frozenset({"order", "missing-type", "schema-violation"})
#: (body, password ok?) -> the status the listener must answer
SPOILED = (
    (b'{"id": "x", "productOrderItem": [', True, 400),
    (b'{"id": "x"}', True, 400),
    (b"{}", False, 401),
)


def endpoint_url(project: Any, endpoint: str) -> tuple[str, tuple[str, str]]:
    """The productOrder URL of a REST endpoint the hub serves, and the first account's credentials."""
    listen = project.endpoint(endpoint).listen
    user = listen.auth.users[0]
    url = f"http://{listen.host}:{listen.port}{listen.base_path}/productOrder"
    return url, (user.username, password(user.password_env))


class RESTChannelOrderScenario(OrdersToIOMScenario):
    """Channel orders POSTed to the hub's TMF622 API, to IOM order requests (JSON on the IOM queue)."""

    id_mark = ID_MARK

    def __init__(self, project: Any, route_id: str) -> None:
        super().__init__(project, route_id)
        self.sent = 0
        self._problems: list[str] = []
        self._lock = threading.Lock()

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Plan those of ``count`` channel orders that reach the route, ids ``<run>-restchannel-n``."""
        self.prefix = f"{run}{ID_MARK}"
        planned = []
        for item in channel_order_scenario(count, run=run):
            if item.kind not in REACHES_ROUTE:
                continue
            ident = item.message.id.replace("-channel-", ID_MARK)
            order = loads(item.message.body)
            order["id"] = ident
            planned.append(PlannedMessage(Message(body=to_json(order), id=ident), item.kind, item.expected))
        return planned

    def send(self, planned: list[PlannedMessage]) -> None:
        """POST each order (201 expected for each: the listener answers once the order is stored, and the
        route dead-letters the refused ones afterwards, which then show ``failed`` on GET), and every
        fifth a spoiled request that must be refused."""
        import requests

        url, auth = endpoint_url(self.project, self.source)
        with requests.Session() as session:
            session.trust_env = False
            for item in planned:
                answer = session.post(url, data=item.message.body, auth=auth, timeout=60,
                                      headers={"Content-Type": "application/json"})  # fmt: skip
                if answer.status_code != 201:
                    self._problem(
                        f"{item.message.id}: expected 201, got {answer.status_code} {answer.text[:200]}"
                    )
                with self._lock:
                    self.sent += 1
                    spoil = SPOILED[self.sent % len(SPOILED)] if self.sent % 5 == 0 else None
                if spoil is not None:
                    self._refused(session, url, auth, *spoil)

    def _refused(
        self, session: Any, url: str, auth: tuple[str, str], body: bytes, good: bool, status: int
    ) -> None:
        credentials = auth if good else (auth[0], "not-" + auth[1])
        answer = session.post(
            url, data=body, auth=credentials, timeout=60, headers={"Content-Type": "application/json"}
        )
        if answer.status_code != status or "reason" not in answer.json():
            self._problem(f"a spoiled order got {answer.status_code}, not {status} with TMF's error JSON")

    def _problem(self, text: str) -> None:
        with self._lock:
            self._problems.append(text)

    def problems(self) -> list[str]:
        """Malformed requests IOM saw, and answers of the hub's API that were not the expected ones."""
        with self._lock:
            return [*super().problems(), *self._problems]
