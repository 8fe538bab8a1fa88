"""``python -m benchmarks compute ...``: the benchmarks that take subcommands."""

from __future__ import annotations

import sys

from benchmarks import compute, first_sync, ledger, realtime, sandbox

COMMANDS = {
    "compute": compute.main,
    "first_sync": first_sync.main,
    "ledger": ledger.main,
    "realtime": realtime.main,
    "sandbox": sandbox.main,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python -m benchmarks {{{','.join(COMMANDS)}}} [options] (--help for each)")
    COMMANDS[sys.argv[1]](sys.argv[2:])
