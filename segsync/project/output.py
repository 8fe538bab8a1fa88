"""Plain-text rendering for the CLI: tables, money, progress. No colours, no prompts."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TextIO

from segsync.core.text import human_duration as human_duration  # re-exported for the commands
from segsync.core.text import money as money


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = ()) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, r in enumerate(cells):
        line = "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r))
        out.append(line.rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, Decimal):
        return money(v)
    if isinstance(v, float):
        return f"{v:.1%}" if 0 <= v <= 1 else f"{v:,.2f}"
    return str(v)


class Progress:
    """Progress lines on stderr: live on a terminal, one line per step otherwise (CI, cron)."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.quiet = quiet
        self._last_step = ""
        self._last_at = 0.0

    def __call__(self, step: str, done: int, total: int | None = None) -> None:
        if self.quiet:
            return
        text = f"{step}: {done:,}" + (f" of {total:,}" if total else " so far")
        if self.live:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            return
        now = time.monotonic()
        if step != self._last_step or now - self._last_at >= 5:
            self.stream.write(text + "\n")
            self._last_step, self._last_at = step, now

    def done(self) -> None:
        if self.live and not self.quiet:
            self.stream.write("\r\033[K")
            self.stream.flush()
