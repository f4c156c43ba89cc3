"""Full resync, reconciliation and repair of syncs, built on the sync store (docs/sync.md).

Kept apart from :mod:`esb.sync` (the store, the rules, the runs and fingerprints) because it runs a sync
route's steps and sinks (:mod:`esb.runtime`), which the ``sync`` step itself is part of.
"""
