"""The target's own id of a synced key: the store, the ``sync_target_id`` step, lint, and ``enrich``
answering a listed fault as a reply (the pieces of crm-billing-account-to-billing's update path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esb.exceptions import RemoteError
from esb.expressions import Expression
from esb.lint import Linter
from esb.message import Message
from esb.processors.routing import Enricher
from esb.processors.sync_target_id import TargetIdKeeper, TargetIdRule
from esb.sync.content import SyncDataError
from esb.sync.store import SyncStore, SyncWrite
from tests.unit.routes_fixture import make_project

SYNC = "billing-account-billing"


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A fresh SQLite journal database file."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def store(url: str) -> Iterator[SyncStore]:
    """The sync store on that database."""
    with SyncStore(url) as opened:
        yield opened


def keeper(url: str, remember: str | None = None) -> TargetIdKeeper:
    """A sync_target_id processor of the billing-account sync, the id into ``billingAccountId``."""
    rule = TargetIdRule(SYNC, "billingAccountId", None if remember is None else Expression(remember))
    return TargetIdKeeper(rule, url)


def account(key: str = "1-ACC", **extra: Any) -> Message:
    """A synced billing account as the sync step passes it on (with its sync-key header)."""
    return Message(body={"id": key, "name": "张伟的账户", **extra}, headers={"sync-key": key})


def test_the_store_keeps_the_latest_target_id_per_sync_and_key(store: SyncStore) -> None:
    """remember_target_id replaces an older id; another sync or key is not affected."""
    assert store.target_id(SYNC, "1-ACC") is None
    store.remember_target_id(SYNC, "1-ACC", "2000000001")
    store.remember_target_id(SYNC, "1-ACC", "2000000007")
    store.remember_target_id("other-sync", "1-ACC", "X")
    assert store.target_id(SYNC, "1-ACC") == "2000000007"
    assert store.target_id(SYNC, "1-OTHER") is None
    assert store.target_id("other-sync", "1-ACC") == "X"


def test_remembering_an_id_does_not_move_the_keys_state(store: SyncStore) -> None:
    """The state's revision (a resync's fingerprints and compare-and-sets read it) stays where it was."""
    store.claim(SyncWrite(SYNC, "1-ACC", "h" * 32, None, False, "m1", {"name": "x"}), None)
    before = store.get(SYNC, "1-ACC")
    store.remember_target_id(SYNC, "1-ACC", "2000000001")
    after = store.get(SYNC, "1-ACC")
    assert before is not None
    assert after is not None
    assert (after.revision, after.hash, after.message_id) == (before.revision, before.hash, "m1")


def test_recall_puts_null_before_the_target_answered_and_the_kept_id_after(url: str) -> None:
    """Without remember the step only reads: null for a key never answered, then the id a create kept."""
    recall, remember = keeper(url), keeper(url, "body.reply.accountId")
    try:
        [first] = recall(account())
        assert first.body["billingAccountId"] is None
        [kept] = remember(account(reply={"accountId": "2000000001"}))
        assert kept.body["billingAccountId"] == "2000000001"
        [later] = recall(account())
        assert later.body["billingAccountId"] == "2000000001"
        assert later.body["name"] == "张伟的账户"
    finally:
        recall.close()
        remember.close()


def test_a_message_without_the_sync_key_header_is_a_data_error(url: str) -> None:
    """The step needs the sync step's sync-key header: without it the message is dead-lettered, saying so."""
    step = keeper(url)
    try:
        with pytest.raises(SyncDataError, match="no 'sync-key' header"):
            step(Message(body={"id": "1-ACC"}))
    finally:
        step.close()


@pytest.mark.parametrize("reply", [None, {}, {"accountId": ""}, {"accountId": True}], ids=str)
def test_an_answer_without_an_id_is_a_data_error_and_keeps_nothing(url: str, reply: Any) -> None:
    """A create answer without the target's id is refused (dead-lettered), and no id is kept."""
    step = keeper(url, "body.reply.accountId")
    try:
        with pytest.raises(SyncDataError, match=r"has no id at 'body\.reply\.accountId'"):
            step(account(reply=reply))
        assert step._store.get().target_id(SYNC, "1-ACC") is None
    finally:
        step.close()


class Refusing:
    """A requester that refuses every request with ``code``."""

    def __init__(self, code: str | None) -> None:
        self.code = code

    def connect(self) -> None:
        """Nothing to open."""

    def request(self, message: Message, timeout: float) -> Message:
        """Refuse."""
        raise RemoteError("account not found: 2000000001", code=self.code)

    def close(self) -> None:
        """Nothing to close."""


def test_enrich_merges_a_listed_fault_as_the_reply() -> None:
    """A fault whose code the step lists is merged at `into` as {fault: {code, message}}; it goes on."""
    enrich = Enricher(lambda: Refusing("BIL-1004"), None, None, "reply", 1.0, frozenset({"BIL-1004"}))
    [out] = enrich(Message(body={"id": "1-ACC"}))
    assert out.body["reply"] == {
        "fault": {"code": "BIL-1004", "message": "BIL-1004: account not found: 2000000001"}
    }


@pytest.mark.parametrize("code", ["BIL-1001", None], ids=["another code", "no code"])
def test_enrich_still_fails_on_a_fault_it_does_not_list(code: str | None) -> None:
    """Any other refusal still fails the message (redelivered or dead-lettered by the route)."""
    enrich = Enricher(lambda: Refusing(code), None, None, "reply", 1.0, frozenset({"BIL-1004"}))
    with pytest.raises(RemoteError):
        enrich(Message(body={"id": "1-ACC"}))


def test_lint_refuses_a_target_id_step_of_a_sync_its_route_does_not_declare(tmp_path: Path) -> None:
    """sync_target_id names the route's own sync (the key is its header): another name is a finding."""
    sync = {"sync": {"name": "accounts", "key": "body.id", "fields": ["name"]}}
    routes = [
        {
            "id": "r",
            "from": "a.in",
            "steps": [sync, {"sync_target_id": {"name": "acounts", "into": "targetId"}}],
            "to": "a.out",
            "on_error": {"dead_letter": "dlq.r"},
        }
    ]
    project = make_project(tmp_path, routes, ["a.in", "a.out", "dlq.r"])
    findings = Linter(project).run()
    assert [f for f in findings if "sync_target_id" in f and "declares no sync 'acounts'" in f], findings
    routes[0]["steps"] = [sync, {"sync_target_id": {"name": "accounts", "into": "targetId"}}]
    project = make_project(tmp_path, routes, ["a.in", "a.out", "dlq.r"])
    assert not [f for f in Linter(project).run() if "sync_target_id" in f]
