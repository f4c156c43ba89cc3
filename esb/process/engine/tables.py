"""The process engine's tables, in the journal's database (created by the migration ``0003_processes``).

They hang on the journal's ``metadata`` so that the journal's drift check (migrations against code) sees
them. Times are :class:`~esb.journal.schema.UTCDateTime`; JSON is ``JSON``/``JSONB`` as in the journal.

- ``process_definitions``: each definition an instance ever started on, by content hash (the instance
  runs that one until it ends, whatever is deployed later).
- ``process_instances``: one row per instance: its position, data, TMF state, ``partial`` (a join
  ended partial and went on), ``wake_at`` (the due time
  of its timer, None while it only waits for a message), its lease (owner, until) and ``fence``, the
  counter every write of the lease holder is guarded by; ``traceparent``/``tracestate``: the W3C trace
  context the instance was started in (its steps' spans continue that trace after a restart or on
  another hub; NULL when tracing was off), added by the migration ``0009_process_trace_context``.
- ``process_keys``: the business keys of each instance (replies and cancels find it by them).
- ``process_steps``: one row per attempt of a step (or of an undo), with its idempotency key.
- ``process_branches``: the branches of a ``parallel`` or ``foreach`` step: each one's position,
  item, sub-order state, status and ``wake_at`` (the instance's ``wake_at`` is the earliest).
- ``process_inbox``: replies and cancel requests, stored before anyone waits; each ends consumed by a
  step or dead with why.
"""

from __future__ import annotations

import sqlalchemy as sa

from esb.journal.schema import JSONType, UTCDateTime, metadata

process_definitions = sa.Table(
    "process_definitions",
    metadata,
    sa.Column("hash", sa.String(80), primary_key=True),
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("body", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

process_instances = sa.Table(
    "process_instances",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("definition_hash", sa.String(80), nullable=False),
    sa.Column("trigger_id", sa.String(), nullable=False),
    sa.Column("state", sa.String(40), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("data", JSONType, nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("wake_at", UTCDateTime(), nullable=True),
    sa.Column("lease_owner", sa.String(), nullable=True),
    sa.Column("lease_until", UTCDateTime(), nullable=True),
    sa.Column("fence", sa.Integer(), nullable=False),
    sa.Column("partial", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("traceparent", sa.String(), nullable=True),
    sa.Column("tracestate", sa.String(), nullable=True),
    sa.ForeignKeyConstraint(["definition_hash"], ["process_definitions.hash"], name="fk_instances_def"),
    sa.UniqueConstraint("process", "trigger_id", name="uq_process_instances_trigger"),
    sa.Index("ix_process_instances_status_wake_at", "status", "wake_at"),
)

process_keys = sa.Table(
    "process_keys",
    metadata,
    sa.Column("process", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(), primary_key=True),
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.ForeignKeyConstraint(["instance_id"], ["process_instances.id"], name="fk_keys_instance"),
)

process_steps = sa.Table(
    "process_steps",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("instance_id", sa.String(64), nullable=False),
    sa.Column("path", sa.String(), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("idempotency_key", sa.String(), nullable=True),
    sa.Column("result", JSONType, nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("deadline", UTCDateTime(), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(["instance_id"], ["process_instances.id"], name="fk_steps_instance"),
    sa.Index("ix_process_steps_instance_id", "instance_id"),
)

process_branches = sa.Table(
    "process_branches",
    metadata,
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("path", sa.String(), primary_key=True),
    sa.Column("parent", sa.String(64), nullable=False),
    sa.Column("idx", sa.Integer(), nullable=False),
    sa.Column("item_key", sa.String(), nullable=True),
    sa.Column("item", JSONType, nullable=True),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("state", sa.String(40), nullable=True),
    sa.Column("wake_at", UTCDateTime(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(["instance_id"], ["process_instances.id"], name="fk_branches_instance"),
)

process_inbox = sa.Table(
    "process_inbox",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("correlation_key", sa.String(), nullable=False),
    sa.Column("reply_name", sa.String(), nullable=False),
    sa.Column("message_id", sa.String(), nullable=False),
    sa.Column("message", JSONType, nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("consumed_by", sa.String(), nullable=True),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.UniqueConstraint("message_id", name="uq_process_inbox_message_id"),
    sa.Index("ix_process_inbox_lookup", "process", "correlation_key", "reply_name", "status"),
)
