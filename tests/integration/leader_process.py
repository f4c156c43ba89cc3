"""A process that campaigns for leadership: ``python leader_process.py NAME JOURNAL_URL DATA_DIR``.

Prints ``leader`` when elected, then keeps running until killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

from esb.runtime.leader import LeaderElection


def main() -> None:
    """Campaign until killed."""
    settings = SimpleNamespace(journal=SimpleNamespace(url=sys.argv[2]), data_dir=Path(sys.argv[3]))
    election = LeaderElection(sys.argv[1], settings, interval=0.2)
    election.start()
    print("ready", flush=True)
    election.elected.wait()
    print("leader", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
