"""`type: pool`: one build spread over several builders (its members), and where each image goes.

The schedule (schedule.py) does the building, on every member at once, with one code path for reuse, checks,
pushes and failure reports; this module holds the members and the placement rule, a pure function:
an image whose parent is done goes to a member that holds the parent (built, found or pulled it) and has a free
slot, else to the least busy member with a free slot (the first listed on a tie); `--jobs` slots per member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..errors import BuildError
from .base import Endpoint
from .protocol import Builder

DONE = ("built", "reused", "pulled")


@dataclass
class Seat:
    """A member as placement sees it: its slots, the images it works on (load), whether it answers, and the
    project's images it holds."""

    name: str
    slots: int
    load: int = 0
    up: bool = True
    holds: set[str] = field(default_factory=set)

    def free(self) -> bool:
        return self.up and self.load < self.slots


def place(parent: str | None, seats: Sequence[Seat]) -> Seat | None:
    """The member an image goes to: the least busy of those holding its parent with a free slot, else the least
    busy with a free slot (the first listed on a tie); None when no member that is up has a free slot."""
    free = [seat for seat in seats if seat.free()]
    holding = [seat for seat in free if parent is not None and parent in seat.holds]
    chosen = holding or free
    return min(chosen, key=lambda seat: seat.load) if chosen else None


class Placement:
    """Which image starts next, and where. Images become ready when their parent (if it is one of the images)
    is done, and start in the order they became ready, each taking a slot of the member `place` picks."""

    def __init__(self, order: Sequence[str], parents: Mapping[str, str | None], seats: Sequence[Seat]) -> None:
        self.order = list(order)
        self.parents = dict(parents)
        self.seats = list(seats)
        self.waiting: list[str] = []  # ready, not started, in the order they became ready
        self.seen: set[str] = set()  # ready at some point (waiting, started or finished)

    def assign(self, finished: Mapping[str, str]) -> list[tuple[str, Seat]]:
        """The images to start now, each with its member (whose load it takes); finished: image -> status."""
        for name in self.order:
            parent = self.parents.get(name)
            if name in self.seen or name in finished:
                continue
            if parent is not None and parent in self.parents and finished.get(parent) not in DONE:
                continue
            self.seen.add(name)
            self.waiting.append(name)
        started: list[tuple[str, Seat]] = []
        while self.waiting:
            seat = place(self.parents.get(self.waiting[0]), self.seats)
            if seat is None:
                break
            seat.load += 1
            started.append((self.waiting.pop(0), seat))
        return started

    def release(self, seat: Seat) -> None:
        """An image on this member finished (or was given up): its slot is free."""
        seat.load -= 1

    def again(self, name: str) -> None:
        """An image whose member went down: it starts again first, on another member."""
        self.waiting.insert(0, name)

    def drop(self) -> list[str]:
        """Every waiting image, taken out (no member is up to build them)."""
        waiting, self.waiting = self.waiting, []
        return waiting


class Pool:
    """A pool's members, opened; connect marks a member that cannot be reached down (all down: BuildError)."""

    def __init__(self, endpoint: Endpoint, members: Sequence[tuple[str, Builder]]) -> None:
        self.endpoint = endpoint
        self.members = list(members)
        self.down: dict[str, str] = {}  # member -> why it is down (a connection refused, an engine lost)

    def describe(self) -> str:
        return "pool of " + ", ".join(name for name, _ in self.members)

    def connect(self) -> None:
        for name, builder in self.members:
            try:
                builder.connect()
            except BuildError as exc:
                self.down[name] = str(exc)
        if len(self.down) == len(self.members):
            raise BuildError(f"no member of pool '{self.endpoint.name}' can be reached: "
                             + "; ".join(f"{self.down[name]}" for name, _ in self.members))

    def close(self) -> None:
        for _, builder in self.members:
            builder.close()
