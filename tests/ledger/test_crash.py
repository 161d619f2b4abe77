"""Crash safety: a writer killed with SIGKILL at any moment leaves the file as before or after.

A child process (started from a ``forkserver`` that preloaded :mod:`tests.ledger._kill_child`)
closes January, which first cancels a recalculation dated 15 February, then reverses the
close. It is killed either by the parent after a seeded random delay (25 of them, spread over
the measured duration of the two operations), or by itself at a named step inside a write
(the ``INVCLOSE_LEDGER_FAULT`` hook). After each kill the parent reopens the file and checks:

* ``verify()`` passes;
* the file equals (every table, every row) one of the three states of an uninterrupted run:
  before the close, after the close, after the reversal: each operation fully happened or not
  at all (and a fault before a commit leaves the state before, after it the state after);
* finishing the work (reverse if a close is in force, then close) gives exactly the close of an
  uninterrupted run: same ``close_id`` and identical tables. This is done once per state
  found: a file whose every table equals that state's gives the same next close.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import shutil
import signal
import statistics
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pytest

import invclose
from invclose.ledger import Ledger
from tests.ledger import _kill_child
from tests.ledger.helpers import CONFIG, day, dump, rows, same_dump

SEED = 20250131
RANDOM_KILLS = 25
PARALLEL = 3
TIMEOUT = 120.0

#: Fault steps and the state they must leave: 0 before the close, 1 after it, 2 after the
#: reversal. ``close:reversal_*`` are inside the close's cancellation of the recalculation.
FIXED = (
    ("close:begin", 0),
    ("close:reversal_marked", 0),
    ("close:reversal_recorded", 0),
    ("close:stored_adjustments", 0),
    ("close:close_recorded", 0),
    ("close:certified", 0),
    ("close:before_commit", 0),
    ("close:after_commit", 1),
    ("reverse:reversal_marked", 1),
    ("reverse:reversal_recorded", 1),
    ("reverse:before_commit", 1),
    ("reverse:after_commit", 2),
)

JANUARY = rows(
    ("A-R1", "A", day(1, 3), 10, "100.00", "purchase"),
    ("A-R2", "A", day(1, 10), 10, "120.00", "purchase"),
    ("A-S1", "A", day(1, 15), -12, "-132.00", "sale"),
    ("B-R1", "B", day(1, 5), 4, "20.00", "purchase"),
    ("B-S1", "B", day(1, 20), -3, "-15.00", "sale"),
)
FEBRUARY = rows(
    ("A-R3", "A", day(2, 5), 10, "150.00", "purchase"),
    ("A-S2", "A", day(2, 8), -10, "-136.67", "sale"),
)


@dataclass
class Job:
    """One child run: what kills it, and what came out."""

    name: str
    path: Path
    fault: str | None = None
    delay: float | None = None
    expected: int | None = None
    exitcode: int | None = None
    times: tuple[float, float] | None = None


@dataclass(frozen=True)
class World:
    """The prepared file, the dumps of an uninterrupted run, and its close."""

    base: Path
    states: tuple[dict[str, object], ...]
    close: invclose.CloseResult


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("crash")
    base = root / "base.duckdb"
    with Ledger(base, config=CONFIG) as books:
        books.post(JANUARY)
        books.post(FEBRUARY)
        books.recalculate("2025-02-15")
    reference = root / "reference.duckdb"
    shutil.copy(base, reference)
    with Ledger(reference) as books:
        states = [dump(books)]
        close = books.close(_kill_child.CLOSE_DATE)
        states.append(dump(books))
        books.reverse()
        states.append(dump(books))
    return World(base, tuple(states), close)  # type: ignore[arg-type]


def _run(ctx: mp.context.ForkServerContext, job: Job, base: Path) -> Job:
    """Start the child on a copy of ``base``, kill it as the job says, wait for its end."""
    shutil.copy(base, job.path)
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_kill_child.run, args=(str(job.path), job.fault, sender), daemon=True
    )
    child.start()
    sender.close()
    try:
        if not receiver.poll(TIMEOUT):
            msg = f"{job.name}: the child never got ready"
            raise AssertionError(msg)
        receiver.recv()  # ready: the ledger is open, the close starts now
        if job.delay is not None:
            time.sleep(job.delay)
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGKILL)
        child.join(TIMEOUT)
        try:
            if receiver.poll():
                _, closed, reversed_ = receiver.recv()
                job.times = (closed, reversed_)
        except EOFError:
            pass
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        receiver.close()
    job.exitcode = child.exitcode
    return job


def _check(job: Job, world: World, *, finish: bool | set[int] = True) -> int:
    """Verify the file after the child ended, finish the work, return the state found.

    ``finish`` may be the set of states already finished once: a file whose every table
    equals such a state gives the same next close, so it is not closed again (time).
    """
    with Ledger(job.path) as books:
        checks = books.verify()
        failed = checks.filter(~checks["ok"])
        assert failed.is_empty(), (job, failed.to_dicts())
        found = dump(books)
        stages = [i for i, s in enumerate(world.states) if same_dump(found, s)]  # type: ignore[arg-type]
        assert len(stages) == 1, (job, "the file is not a state of an uninterrupted run")
        stage = stages[0]
        if finish is True or (isinstance(finish, set) and stage not in finish):
            if stage == 1:
                books.reverse()
            again = books.close(_kill_child.CLOSE_DATE)
            assert again.equals(world.close), (job, again.close_id, world.close.close_id)
            if isinstance(finish, set):
                finish.add(stage)
    return stage


def test_a_killed_writer_leaves_the_file_consistent(world: World, tmp_path: Path) -> None:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.ledger._kill_child"])

    # Uninterrupted children, side by side as the killed ones will run, measure how long
    # the close and the reversal take; the random kills are spread over that span.
    with ThreadPoolExecutor(PARALLEL) as pool:
        measured = list(
            pool.map(
                lambda i: _run(ctx, Job(f"measure-{i}", tmp_path / f"m{i}.duckdb"), world.base),
                range(PARALLEL),
            )
        )
    for i, job in enumerate(measured):
        assert job.exitcode == 0, job
        assert job.times is not None
        assert _check(job, world, finish=i == 0) == 2
    span = 1.2 * statistics.median(sum(job.times or (0.0, 0.0)) for job in measured)

    rng = random.Random(SEED)
    jobs = [
        Job(f, tmp_path / f"fault-{i}.duckdb", fault=f, expected=e)
        for i, (f, e) in enumerate(FIXED)
    ]
    jobs += [
        Job(f"random-{i}", tmp_path / f"random-{i}.duckdb", delay=rng.random() * span)
        for i in range(RANDOM_KILLS)
    ]
    outcomes: dict[str, int] = {}
    finished: set[int] = {2}  # states already finished once (the uninterrupted child's)
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = [pool.submit(_run, ctx, job, world.base) for job in jobs]
        for future in as_completed(futures):
            job = future.result()
            if job.fault is not None:
                assert job.exitcode == -signal.SIGKILL, (job.name, job.exitcode)
            outcomes[job.name] = _check(job, world, finish=finished)
            if job.expected is not None:
                assert outcomes[job.name] == job.expected, (job.name, outcomes[job.name])
    by_stage = [
        sum(1 for n, s in outcomes.items() if n.startswith("random") and s == k) for k in range(3)
    ]
    print(f"random kills over {span:.2f}s left states before/closed/reversed: {by_stage}")
    assert sum(by_stage) == RANDOM_KILLS
