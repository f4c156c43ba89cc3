"""The simulated OSS credit-control service (停机 / 复机): bars and unbars subscribers' services.

It speaks ``config/contracts/oss/oss-credit-control.wsdl`` (SetServiceState) over SOAP 1.1 and 1.2 with
the simulators' own lxml code. OSS applies the command before it answers: the answer carries the
service's state after it (ACTIVE, ONE_WAY_BARRED, TWO_WAY_BARRED). Idempotent by ``requestId``: a
repeat answers the first answer again and changes nothing; a ``requestId`` reused for another command is
``OSS-1006``. Injected behaviour: ``refused`` (numbers OSS does not know: ``OSS-2004``, permanent),
``down`` (numbers whose network element never answers: ``OSS-0503`` every time, retryable, so the hub
retries per its route's policy and dead-letters) and :meth:`busy_next` (one transient ``OSS-0503``).

``states`` is each number's service state; ``history`` each number's applied commands in order: what the
demo and the tests compare with the last event Billing sent.
"""

from __future__ import annotations

from collections import defaultdict

from simulators.soap_service import Fields, Handler, ServiceFault, SimulatedSOAPService, now_iso, required

TYPES = "http://oss.telecom.example/ws/creditcontrol/types/v1"
FAULTS = "http://oss.telecom.example/ws/faults/v1"
ACTIVE = "ACTIVE"
#: (action, barring) -> the service state after the command
STATE_AFTER = {
    ("SUSPEND", "ONE_WAY"): "ONE_WAY_BARRED",
    ("SUSPEND", "TWO_WAY"): "TWO_WAY_BARRED",
    ("RESUME", ""): ACTIVE,
}


class OSSCreditControlSimulator(SimulatedSOAPService):
    """OSS's SetServiceState web service; ``serve()`` starts it."""

    TYPES = TYPES
    FAULTS = FAULTS
    FAULT_ELEMENT = "OSSFault"
    NAME = "sim-oss-cc"
    PATH = "/services/OSSCreditControl"
    BAD_REQUEST = "OSS-0400"
    UNAUTHORISED = "OSS-0401"
    BUSY = "OSS-0503"

    def __init__(
        self,
        username: str = "esb",
        password: str = "oss-secret",  # noqa: S107 - a test default, like the OSS activation simulator's
    ) -> None:
        super().__init__(username, password)
        #: msisdn -> service state; a number OSS has not seen is ACTIVE
        self.states: dict[str, str] = {}
        #: msisdn -> the (requestId, state after) of each command applied, in order
        self.history: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
        self.answers: dict[str, dict[str, str]] = {}
        self._commands: dict[str, tuple[str, str, str]] = {}
        #: numbers OSS does not know (OSS-2004, permanent)
        self.refused: set[str] = set()
        #: numbers whose switch never answers (OSS-0503 on every call, retryable)
        self.down: set[str] = set()

    def state_of(self, msisdn: str) -> str:
        """The number's service state now (ACTIVE if never barred)."""
        with self._lock:
            return self.states.get(msisdn, ACTIVE)

    def applied(self, msisdn: str) -> list[tuple[str, str]]:
        """The commands applied to one number, in order: (requestId, state after)."""
        with self._lock:
            return list(self.history.get(msisdn, []))

    def _set_state(self, f: Fields) -> dict[str, str]:
        request_id = required(f, "requestId", "OSS-0400")
        msisdn = required(f, "msisdn", "OSS-0400")
        action = required(f, "action", "OSS-0400")
        given = f.get("barring") if action == "SUSPEND" else ""
        barring = given if isinstance(given, str) else ""
        after = STATE_AFTER.get((action, barring)) if isinstance(given, str) else None
        if after is None:
            raise ServiceFault("OSS-0400", f"bad request: {action} with barring {given!r}")
        with self._lock:
            if msisdn in self.down:
                raise ServiceFault(self.BUSY, f"network element of {msisdn} not answering", server=True)
            if msisdn in self.refused:
                raise ServiceFault("OSS-2004", f"subscriber {msisdn} unknown to OSS")
            known = self._commands.get(request_id)
            if known is not None:
                if known != (msisdn, action, barring):
                    raise ServiceFault("OSS-1006", f"requestId {request_id!r} already used for {known}")
                return self.answers[request_id]
            self._commands[request_id] = (msisdn, action, barring)
            self.states[msisdn] = after
            self.history[msisdn].append((request_id, after))
            answer = {
                "requestId": request_id,
                "msisdn": msisdn,
                "result": "COMPLETED",
                "serviceState": after,
                "completedAt": now_iso(),
            }
            self.answers[request_id] = answer
            return answer

    def operations(self) -> dict[str, tuple[str, Handler]]:
        """Request element local name -> (response element local name, handler)."""
        return {"SetServiceStateRequest": ("SetServiceStateResponse", self._set_state)}
