"""Runs p3m-live's main() on many argument lists in one process (fuzz and privacy tests).

    python tests/cli_driver.py CASES.json [--block-network]

Prints one line per case: ``CODE<TAB>argv``. With --block-network, any socket
use (an audit hook sees socket.connect, getaddrinfo, ...) is refused and logged
to stderr as NETWORK, so a test can prove a run never touched the network.
"""

from __future__ import annotations

import json
import sys


def block_network(event: str, args: tuple) -> None:
    if event.startswith("socket."):
        print(f"NETWORK {event} {args!r}", file=sys.stderr)
        raise PermissionError(f"network access blocked by the test: {event}")


def main() -> int:
    cases = json.loads(open(sys.argv[1]).read())
    if "--block-network" in sys.argv:
        sys.addaudithook(block_network)
    from p3m_live.cli import main as p3m_main

    for argv in cases:
        try:
            code = p3m_main(argv)
        except SystemExit as e:  # argparse's own usage errors
            code = e.code if isinstance(e.code, int) else 2
        print(f"{code}\t{json.dumps(argv)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
