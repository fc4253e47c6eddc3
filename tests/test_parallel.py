"""`novajudge.parallel.ordered_map`: `map` in order, every other task in a forked worker, and a
worker that fails, dies, stalls or cannot send its result costs time, never a result."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from novajudge import parallel
from novajudge.parallel import ordered_map

pytestmark = pytest.mark.skipif(not parallel.can_fork(), reason="needs two cores and fork")

PARENT = os.getpid()  # this test process; a forked worker has another pid


def _where(task: int) -> tuple[int, int]:
    return task, os.getpid()


def test_results_in_order_and_every_other_task_in_a_worker():
    results = list(ordered_map(_where, range(7), parallel=True))
    assert [task for task, _ in results] == list(range(7))
    pids = [pid for _, pid in results]
    assert all(pid == os.getpid() for pid in pids[0::2])
    workers = set(pids[1::2])
    assert len(workers) == 1 and os.getpid() not in workers  # one worker, not this process
    assert multiprocessing.active_children() == []  # joined


def test_serial_when_asked_or_when_one_task():
    assert list(ordered_map(_where, range(4), parallel=False)) == [(t, os.getpid()) for t in range(4)]
    assert list(ordered_map(_where, [5], parallel=True)) == [(5, os.getpid())]
    assert list(ordered_map(_where, [], parallel=True)) == []


def test_serial_on_one_core(monkeypatch):
    monkeypatch.setattr(parallel, "cores", lambda: 1)
    assert list(ordered_map(_where, range(4))) == [(t, os.getpid()) for t in range(4)]


def _fails_in_worker(task: int) -> int:
    if os.getpid() != PARENT:
        raise RuntimeError("only the worker fails")
    return task * 10


def test_a_task_the_worker_fails_is_run_again_here():
    assert list(ordered_map(_fails_in_worker, range(5), parallel=True)) == [0, 10, 20, 30, 40]


def _fails_on_three(task: int) -> int:
    if task == 3:
        raise ValueError(f"task {task} is bad")
    return task


def test_the_genuine_error_is_raised_at_its_turn():
    seen: list[int] = []
    with pytest.raises(ValueError, match="task 3 is bad") as raised:
        for value in ordered_map(_fails_on_three, range(6), parallel=True):
            seen.append(value)
    assert seen == [0, 1, 2]  # the results before it were delivered, in order
    assert raised.traceback[-1].name == "_fails_on_three"  # raised here, with its own traceback
    assert multiprocessing.active_children() == []  # the worker was stopped


def _worker_dies_on_one(task: int) -> int:
    if task == 1 and os.getpid() != PARENT:
        os._exit(3)
    return task + 100


def test_a_dead_worker_leaves_its_tasks_to_the_caller():
    assert list(ordered_map(_worker_dies_on_one, range(6), parallel=True)) == [100, 101, 102, 103, 104, 105]


def _worker_stalls(task: int) -> int:
    if os.getpid() != PARENT:
        time.sleep(60)
    return -task


def test_a_stalled_worker_is_replaced_after_the_timeout(monkeypatch):
    monkeypatch.setattr(parallel, "WORKER_TIMEOUT", 0.2)
    start = time.monotonic()
    assert list(ordered_map(_worker_stalls, range(4), parallel=True)) == [0, -1, -2, -3]
    assert time.monotonic() - start < 30  # the stalled worker was not waited for
    assert multiprocessing.active_children() == []  # and was killed


def _unpicklable(task: int) -> object:
    return lambda: task  # a lambda cannot travel through the pipe


def test_a_result_that_cannot_travel_is_computed_here():
    results = list(ordered_map(_unpicklable, range(4), parallel=True))
    assert [f() for f in results] == [0, 1, 2, 3]


def test_stopping_early_kills_the_worker():
    values = ordered_map(_worker_stalls_forever_in_worker, range(6), parallel=True)
    assert next(values) == 0
    values.close()
    assert multiprocessing.active_children() == []


def _worker_stalls_forever_in_worker(task: int) -> int:
    if os.getpid() != PARENT:
        time.sleep(600)
    return task
