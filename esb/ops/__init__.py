"""Operators' tools over the running hub and its journal: health, replay, dead letters, trace, stats, control.

Each command of the CLI (``esb/cli/*_cmd.py``) is a thin shell over one module here, so the same logic
serves scripts, tests and the hub's own HTTP listener. See docs/operations.md (the runbook).
"""
