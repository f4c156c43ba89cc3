"""The sync state table, in the journal's database (created by the migration ``0004_sync_state``).

One row per (sync name, key): what the hub last sent that target for that key. It hangs on the journal's
``metadata`` so that the journal's drift check (migrations against code) sees it.

- ``hash``: the content hash of the fields the target cares about (:func:`esb.sync.content.content_hash`).
- ``version``: the change's version as a comparable integer (an integer as given; a date-time as
  microseconds since the epoch, UTC), None when the sync declares no version rule.
- ``deleted``: the target holds no record for the key (a delete was sent, or nothing was ever sent
  because the record is excluded).
- ``message_id``: the message whose change was last sent for the key (None: nothing was ever sent).
- ``body``: the projected canonical body that was sent, zlib-compressed JSON.
- ``revision``: bumped by every write; a compare-and-set names the revision it read.
"""

from __future__ import annotations

import sqlalchemy as sa

from esb.journal.schema import UTCDateTime, metadata

#: The longest sync name and key the table holds.
MAX_NAME = 64
MAX_KEY = 200

sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("name", sa.String(MAX_NAME), primary_key=True),
    sa.Column("key", sa.String(MAX_KEY), primary_key=True),
    sa.Column("hash", sa.String(32), nullable=False),
    sa.Column("version", sa.BigInteger(), nullable=True),
    sa.Column("deleted", sa.Boolean(), nullable=False),
    sa.Column("message_id", sa.String(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("body", sa.LargeBinary(), nullable=True),
    sa.Column("revision", sa.Integer(), nullable=False),
)

#: Per (sync name, key): the target's own id of the record (Billing's account id for a CRM billing
#: account), from the target's answer to the create (step ``sync_target_id``, migration
#: ``0008_sync_target_ids``). Kept apart from ``sync_state``: it is written after the target answered,
#: never by the compare-and-set, and does not move a key's revision.
sync_target_ids = sa.Table(
    "sync_target_ids",
    metadata,
    sa.Column("name", sa.String(MAX_NAME), primary_key=True),
    sa.Column("key", sa.String(MAX_KEY), primary_key=True),
    sa.Column("target_id", sa.String(MAX_KEY), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
