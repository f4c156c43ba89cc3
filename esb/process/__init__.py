"""Durable processes as content: the process definition language (issue 15), without its engine.

``steps``: the step kinds; ``definition``: a whole process file and the idempotency keys of its calls;
``loader``: every version of every process of a project; ``checks`` and ``statecheck``: one definition on
its own (names, jumps, waits, TM Forum states); ``lint``: against the project (endpoints, transforms,
other processes, the version lock); ``versions``: fingerprints in ``processes/.versions.lock``.
See docs/processes.md.
"""
