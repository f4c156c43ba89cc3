"""Frozen history: the SQL a migration shared with a later one, as it was the day it was written.

A revision must do tomorrow exactly what it did the day it was written, so a migration never imports the
journal's live modules (``partitions``, ``rollup``, ``lookups``, ``pgrows``...): they change with the
runtime, and an old journal upgraded through them would get today's tables, triggers and functions instead
of the ones its revision promised. What a revision needs is copied into the revision file itself, or,
when a later revision needs it too (0017's downgrade puts 0012's ``journal_unique_id`` back), into one
module here per revision (``r0012`` for 0012). Nothing here is ever edited: a change is a new revision.
``tests/unit/test_journal_migrations_frozen.py`` keeps the revisions and these modules off live code.
"""
