"""``segsync watch`` and ``segsync serve``: the long-running commands.

Both print one line per sync on stdout (a timestamp, then what it did) and stop cleanly on
SIGTERM or SIGINT: the running sync stops at its next checkpoint, a later sync resumes it.
Exit statuses: 0 after a stop asked for, 2 for bad configuration or rules at start (nothing
runs), 1 for an internal error of the loop itself. A failed, paused or locked sync never ends
the command: it waits and goes on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re

from segsync.errors import ConfigError
from segsync.project.app import Project, selected_platforms
from segsync.project.loop import RunOutcome, SyncLoop, stop_on_signals
from segsync.project.output import human_duration

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str, option: str = "--every") -> float:
    """``30s``, ``5m``, ``2h``, ``1d`` or plain seconds, as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if match is None or float(match[1]) <= 0:
        raise ConfigError(f"{option} {text!r}: write a positive interval such as 30s, 5m or 1h")
    return float(match[1]) * _UNITS[match[2] or "s"]


def _print_outcome(outcome: RunOutcome) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{stamp} {outcome.line()}", flush=True)


def watch(args: argparse.Namespace) -> int:
    project = Project(args.config)
    project.require_clean_rules()
    platforms = selected_platforms(project.config, args.platform)
    every = parse_interval(args.every)
    loop = SyncLoop(project, platforms, every=every, on_outcome=_print_outcome)
    try:
        print(
            f"segsync watch: syncing {', '.join(platforms)} every {human_duration(every)}; "
            "stop with SIGTERM or Ctrl-C",
            flush=True,
        )
        with stop_on_signals(loop.stop, loop.poke):
            loop.run()
    finally:
        loop.close()
    print("segsync watch: stopped", flush=True)
    return 0


def serve(args: argparse.Namespace) -> int:
    from segsync.project.serve import run_server

    project = Project(args.config)
    project.require_clean_rules()
    platforms = selected_platforms(project.config, args.platform)
    every = None if args.every.strip().lower() in ("0", "off", "never") else parse_interval(args.every)
    debounce = parse_interval(args.debounce, "--debounce")
    loop = SyncLoop(project, platforms, every=every, debounce=debounce)
    try:
        return run_server(project, loop, args, on_outcome=_print_outcome)
    finally:
        loop.close()


__all__ = ["parse_interval", "serve", "watch"]
