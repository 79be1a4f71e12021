"""How a build looks: a live per-image view on a terminal, plain lines elsewhere, and the final summary."""

from __future__ import annotations

import time
from typing import IO, Any, Sequence

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .builders import Outcome, Progress
from .errors import shown_message

FINAL = {"built", "reused", "pulled", "failed", "skipped"}
STYLE = {"built": "green", "reused": "cyan", "pulled": "cyan", "failed": "bold red", "skipped": "yellow",
         "queued": "dim", "building": "blue", "checking": "magenta", "pushing": "blue", "pulling": "blue",
         "resolving": "dim"}
WIDTH = 100


def _short(text: str, width: int = 72) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class PlainView:
    """One line per change that matters: good in CI logs and pipes."""

    def __init__(self, stream: IO[str], *, verbose: bool = False) -> None:
        self.stream = stream
        self.verbose = verbose
        self.width = 1

    def start(self, names: Sequence[str]) -> None:
        self.width = max([self.width, *(len(n) for n in names)])

    def __call__(self, p: Progress) -> None:
        if p.state in ("queued", "resolving") or (p.state == "output" and not self.verbose):
            return
        if p.state == "output":
            line = f"| {p.detail}"
        elif p.state == "building":
            line = f"step {p.step}/{p.steps}: {_short(p.detail)}"
        elif p.state == "checking":
            line = f"check {p.step}/{p.steps}: {_short(p.detail)}"
        elif p.state in ("pulling", "pushing"):
            line = f"{p.state} {p.detail}"
        elif p.state in ("failed", "skipped"):
            first = p.detail.split("\n")[0] if p.detail else ""
            line = f"{p.state}: {_short(first)}"
        else:
            line = f"{p.state} on {p.where}" if p.where else p.state
        print(f"{p.name:<{self.width}}  {line}", file=self.stream, flush=True)

    def stop(self) -> None:
        pass


class LiveView:
    """A table that redraws in place: each image's state, step i/n, and what it is doing."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: dict[str, Progress] = {}
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.live: Live | None = None

    def start(self, names: Sequence[str]) -> None:
        for name in names:
            self.rows[name] = Progress(name, "queued")
        # get_renderable: every refresh redraws, so the time column runs on during a long step.
        self.live = Live(console=self.console, refresh_per_second=4, transient=True, get_renderable=self._table)
        self.live.start()

    def __call__(self, p: Progress) -> None:
        if p.state == "output":  # the newest line the step printed becomes what the row is doing
            row = self.rows[p.name]
            p = Progress(row.name, row.state, row.step, row.steps, p.detail)
        now = time.monotonic()
        if p.state not in ("queued",) and p.name not in self.started:
            self.started[p.name] = now
        if p.state in FINAL:
            self.ended[p.name] = now
        self.rows[p.name] = p
        if self.live is not None:
            self.live.refresh()

    def _table(self) -> Table:
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, expand=False)
        width = max([5, *(len(n) for n in self.rows)])
        # Only "doing" gives way on a narrow terminal: the state, step and time stay readable.
        table.add_column("image", no_wrap=True, min_width=min(width, 40), overflow="ellipsis")
        table.add_column("status", no_wrap=True, min_width=9)
        table.add_column("step", no_wrap=True, min_width=5)
        table.add_column("doing", no_wrap=True, overflow="ellipsis", ratio=1)
        table.add_column("time", no_wrap=True, min_width=5, justify="right")
        now = time.monotonic()
        for name, p in self.rows.items():
            step = f"{p.step}/{p.steps}" if p.steps else ""
            since = self.started.get(name)
            seconds = f"{(self.ended.get(name, now) - since):.0f}s" if since is not None else ""
            doing = "" if p.state in ("built", "reused") else _short(p.detail.split("\n")[0] if p.detail else "", 60)
            doing = f"on {p.where}" if p.where else doing
            table.add_row(name, Text(p.state, style=STYLE.get(p.state, "")), step, doing, seconds)
        return table

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def view(stream: Any, *, color: bool, verbose: bool = False) -> PlainView | LiveView:
    if color and not verbose and getattr(stream, "isatty", lambda: False)():
        return LiveView(Console(file=stream, force_terminal=True))
    return PlainView(stream, verbose=verbose)


def summary(outcomes: Sequence[Outcome], *, seconds: float, builder: str) -> str:
    """The closing counts, e.g. `2 built, 3 reused, 0 failed, 0 skipped in 41.2 s on local`."""
    text = counts(outcomes) + f" in {seconds:.1f} s on {builder}" + _by_member(outcomes)
    if outcomes and all(o.status == "reused" for o in outcomes):
        n = len(outcomes)
        images = "the image is" if n == 1 else f"all {n} images are"
        text = f"nothing to build: {images} up to date ({text})"
    return text


def _by_member(outcomes: Sequence[Outcome]) -> str:
    """In a pool, how many images each member built, found or pulled: ` (local 3, podman 2)`; else nothing."""
    done: dict[str, int] = {}
    for o in outcomes:
        if o.builder and o.status in ("built", "reused", "pulled"):
            done[o.builder] = done.get(o.builder, 0) + 1
    return f" ({', '.join(f'{name} {n}' for name, n in sorted(done.items()))})" if done else ""


def counts(outcomes: Sequence[Outcome]) -> str:
    """`2 built, 3 reused, 0 failed, 0 skipped`, with pulled and pushed when there are any."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    parts = [f"{counts.get(s, 0)} {s}" for s in ("built", "reused", "failed", "skipped")]
    if counts.get("pulled"):
        parts.insert(2, f"{counts['pulled']} pulled")
    pushed = sum(1 for o in outcomes if o.pushed)
    if pushed:
        parts.append(f"{pushed} pushed")
    return ", ".join(parts)


def table(outcomes: Sequence[Outcome], stream: Any, *, color: bool) -> None:
    """The final per-image table: the same columns on a terminal and off it."""
    rows: list[tuple[str, ...]] = [(o.name, o.status, f"{o.seconds:.1f}s", o.tag, (o.key or "")[7:19],
                                    o.pushed or "") for o in outcomes]
    header: tuple[str, ...] = ("image", "status", "time", "tag", "build key", "pushed")
    if not any(r[5] for r in rows):
        header, rows = header[:5], [r[:5] for r in rows]
    header, rows = _with_members(outcomes, header, rows)
    if color and getattr(stream, "isatty", lambda: False)():
        t = Table(box=None, header_style="bold", pad_edge=False)
        for column in header:
            t.add_column(column, no_wrap=True)
        for row in rows:
            t.add_row(row[0], Text(row[1], style=STYLE.get(row[1], "")), *row[2:])
        Console(file=stream, force_terminal=True).print(t)
        return
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip(), file=stream)


def _with_members(outcomes: Sequence[Outcome], header: tuple[str, ...], rows: list[tuple[str, ...]]) \
        -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """In a pool, a builder column: the member each image was built, found or pulled on (or failed on)."""
    if not any(o.builder for o in outcomes):
        return header, rows
    return (*header[:2], "builder", *header[2:]), [(*r[:2], o.builder or "", *r[2:]) for r, o in zip(rows, outcomes)]


def failure(o: Outcome) -> str:
    """Why one image failed: where in its Dockerfile, the engine's words, the last lines of its log."""
    lines = [f"error: image '{o.name}' failed" + (f" at {o.where}" if o.where else "")]
    if o.instruction:
        lines.append(f"  {_short(o.instruction, WIDTH)}")
    lines.extend(f"  {line}" for line in (o.message.rstrip("\n").split("\n") if o.message else []))
    if o.log:
        lines.append("  last lines of the log:")
        lines.extend(f"  | {line}" for line in o.log)
    hint = next((h for words, h in _FAILURE_HINTS if any(w in line for line in [o.message, *o.log] for w in words)), None)
    if hint:
        lines.append(f"hint: {hint}")
    return "\n".join(shown_message(line) for line in lines)  # the engine's words and log: nothing the terminal obeys


# What a failed build's log says -> what to do about it.
_FAILURE_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "SSL certificate problem", "invalid peer certificate"),
     "the build does not trust a TLS certificate (a company proxy or a private index signs with its own CA): list "
     "that CA's PEM file under `certificates:` of the environment (docs/language.md, \"Proxies, private indexes "
     "and CA certificates\")"),
)
