"""The operators' web console: pages over the same ``esb.ops`` functions the CLI calls.

Served by the hub on its own loopback port (``console`` settings) with Flask on waitress
(docs/architecture.md, "The console's web stack"); every page needs a login, actions need the operator
role, every form carries a CSRF token and every action is written to the audit table with who and when.
"""

from __future__ import annotations
