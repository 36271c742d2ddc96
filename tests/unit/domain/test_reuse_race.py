"""Issue 24's race, as a model: two copies' reuse checks under every interleaving of their steps.

Each upload is received (its admission record written, ``admission_item``), may wait in the
admission queue, then is screened: its check (functions/reuse/app.py) writes its index entries,
settles its record, reads, and, finding no earlier match, waits until no earlier upload is
unsettled (``unsettled_earlier``), then reads again. The model runs the real domain rules
(``exact_matches``, ``unsettled_earlier``) over a toy index and toy records, enumerates every
schedule of the two uploads' steps (the earlier one held in the queue for as long as any schedule
likes) and asserts the outcome the issue asks for: exactly one is marked, the later-received
(receipt time, then id), naming the other. The same enumeration without the wait, or with the old
witness (running executions only: a queued upload is invisible), finds schedules that broke
(neither marked), so the model can fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kyc.domain.reuse import InFlight, exact_matches, index_time, unsettled_earlier


@dataclass
class World:
    entries: list[dict[str, str]] = field(default_factory=list)  # the index: one entry per copy
    indexed: set[str] = field(default_factory=set)  # submissions whose entries are all written
    unsettled: dict[str, str] = field(default_factory=dict)  # the witness: sid -> received_at


@dataclass
class Check:
    sid: str
    received_at: str
    wait: bool
    refused: bool = False  # the upload never reaches the index (its screening just ends)
    witness: str = "admissions"  # or "executions": seen only once its screening runs (the old witness)
    pc: str = "queued"
    matched: list[str] | None = None

    def enabled(self, world: World) -> bool:
        if self.pc == "done":
            return False
        if self.pc == "poll":
            return not self._pending(world)
        return True

    def step(self, world: World) -> None:
        """One atomic step: a write, a read, a look at the running screenings, or the end."""
        if self.pc == "queued":  # admitted from the queue: its screening starts
            if self.witness == "executions":
                world.unsettled[self.sid] = self.received_at
            self.pc = "start"
        elif self.refused:  # a terminal path settles the record
            world.unsettled.pop(self.sid, None)
            self.pc = "done"
        elif self.pc == "start":  # write the entries, then settle (the 'indexed' mark)
            world.entries.append({"submission_id": self.sid, "indexed_at": index_time(self.received_at)})
            world.indexed.add(self.sid)
            if self.witness == "admissions":
                world.unsettled.pop(self.sid, None)
            self.pc = "read"
        elif self.pc in ("read", "read_again"):
            found = [m.submission_id for m in self._read(world)]
            if found or not self.wait or self.pc == "read_again":
                self.matched = found
                self.pc = "end"
            else:
                self.pc = "poll"
        elif self.pc == "poll":  # enabled only once nothing earlier is pending
            self.pc = "read_again"
        elif self.pc == "end":  # the decision, then the execution ends (settled on every terminal path)
            world.unsettled.pop(self.sid, None)
            self.pc = "done"

    def _read(self, world: World) -> list:
        at = index_time(self.received_at)
        return exact_matches(list(world.entries), own_submission_id=self.sid, own_indexed_at=at)

    def _pending(self, world: World) -> list[str]:
        in_flight = [InFlight(sid, at) for sid, at in world.unsettled.items()]
        return unsettled_earlier(
            in_flight, world.indexed, own_submission_id=self.sid, own_received_at=self.received_at
        )


def outcomes(make_checks) -> list[dict[str, list[str] | None]]:
    """Every schedule's outcome (depth-first over the choice of which check steps next)."""
    results = []

    def explore(trail: list[int]) -> None:
        world, checks = World(), make_checks()
        for c in checks:
            if c.witness == "admissions":  # both uploads were received before either was screened
                world.unsettled[c.sid] = c.received_at
        for i in trail:
            checks[i].step(world)
        ready = [i for i, c in enumerate(checks) if c.enabled(world)]
        if not ready:
            assert all(c.pc == "done" for c in checks), f"deadlock after {trail}"
            results.append({c.sid: c.matched for c in checks})
            return
        for i in ready:
            explore([*trail, i])

    explore([])
    return results


EARLY, LATE = "2026-12-06T20:00:00.100000+00:00", "2026-12-06T20:00:00.200000+00:00"


def _pair(wait: bool, *, same_time: bool = False, witness: str = "admissions"):
    late_at = EARLY if same_time else LATE  # at the same time, the id decides: "b" is the later
    return lambda: [Check("b", late_at, wait, witness=witness), Check("a", EARLY, wait, witness=witness)]


@pytest.mark.parametrize("same_time", [False, True], ids=["later-received", "same-time-id-decides"])
def test_every_interleaving_marks_exactly_the_later_copy_naming_the_earlier(same_time: bool) -> None:
    results = outcomes(_pair(wait=True, same_time=same_time))
    assert len(results) > 10  # the schedules were enumerated, not one
    for result in results:
        assert result == {"a": [], "b": ["a"]}, result


def test_without_the_wait_some_interleaving_marks_neither() -> None:
    """The code before the fix: the later copy reading before the earlier one writes sees nothing."""
    results = outcomes(_pair(wait=False))
    assert {"a": [], "b": []} in results
    assert {"a": [], "b": ["a"]} in results


def test_the_earlier_upload_held_in_the_queue_is_waited_for() -> None:
    """Every schedule includes those where the earlier upload is still queued (not yet screening)
    while the later one is checked: with admission records the later copy is always the one marked;
    with the old witness (running executions only) some schedule marks neither (the copy PASSes)."""
    queued_first = outcomes(_pair(wait=True))
    assert queued_first and all(r == {"a": [], "b": ["a"]} for r in queued_first)
    old = outcomes(_pair(wait=True, witness="executions"))
    assert {"a": [], "b": []} in old


def test_an_earlier_upload_that_never_indexes_ends_the_wait() -> None:
    """A refused earlier upload (no frames, no entries) ends its screening: the later one is not held."""
    results = outcomes(lambda: [Check("b", LATE, True), Check("a", EARLY, True, refused=True)])
    assert results and all(r == {"a": None, "b": []} for r in results)


def test_a_later_submission_in_flight_is_never_waited_for() -> None:
    """Only earlier submissions are waited for, so waits never form a cycle."""
    in_flight = [InFlight("b", LATE), InFlight("a", EARLY), InFlight("z", EARLY)]
    assert unsettled_earlier(in_flight, set(), own_submission_id="a", own_received_at=EARLY) == []
    assert unsettled_earlier(in_flight, set(), own_submission_id="b", own_received_at=LATE) == ["a", "z"]
    assert unsettled_earlier(in_flight, {"z"}, own_submission_id="b", own_received_at=LATE) == ["a"]
    # the same receipt time: the id breaks the tie, one way only
    assert unsettled_earlier(in_flight, set(), own_submission_id="z", own_received_at=EARLY) == ["a"]
