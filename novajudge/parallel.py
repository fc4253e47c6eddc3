"""Two cores for summarize: a forked worker process beside the caller, which never loses a result.

Why a process and not a thread: the work it takes (reading the judge's `metrics` cells, the trust
analysis) is mostly Python bytecode, and encoding the details parquet reads Python strings, all
under the GIL; a translate-ahead thread was measured slower than none. Why fork: the worker
starts with the caller's data in memory (copy-on-write), so nothing large is pickled on the way
in; results come back through a pipe. AWS Lambda supports `multiprocessing.Process` and `Pipe`
(not `Pool` or `Queue`, which need /dev/shm):
https://aws.amazon.com/blogs/compute/parallel-processing-in-python-with-aws-lambda/

`ordered_map(fn, tasks)` is `map` in order, every other task computed by a worker forked when the
iteration starts, so it sees the data the tasks read. Fork late, and only for large inputs: each
page the two processes share and either of them writes afterwards (a reference count is a write)
is copied, so a worker costs memory as well as a fork; give it the task that touches the most
objects, whose copies then go away with it.

A task the worker does not deliver (it raised, died, or sent nothing for `WORKER_TIMEOUT` seconds)
is run again by the caller, so the error raised is the genuine one with its traceback, and a lost
worker costs time, never a result. One core (or no fork) runs everything in the caller.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Seconds the caller waits for the worker's next result before running that task itself.
WORKER_TIMEOUT = 300.0


def cores() -> int:
    """The CPUs this process may run on (what a container or Lambda grants, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Whether a worker can be forked here: two cores or more, and a platform with fork."""
    return cores() >= 2 and "fork" in multiprocessing.get_all_start_methods()


def _fork(target: Callable[..., None], *args: Any) -> BaseProcess:
    """Start `target(*args)` in a forked daemon process.

    The caller's objects sit in the collector's permanent generation while it forks, so the
    worker's collections never walk (and write to, so copy) the pages they share: the Python docs'
    recipe (https://docs.python.org/3/library/gc.html#gc.freeze).
    """
    worker = multiprocessing.get_context("fork").Process(target=target, args=args, daemon=True)
    gc.freeze()
    try:
        worker.start()
    finally:
        gc.unfreeze()
    return worker


def _deliver(sender: Connection, call: Callable[[], Any]) -> bool:
    """Run `call` and send (delivered, result); a failure sends (False, None) for the caller to
    run it again. False when the caller has stopped listening."""
    try:
        result = (True, call())
    except BaseException:  # the caller runs the task again and raises it itself
        result = (False, None)
    try:
        sender.send(result)
    except (BrokenPipeError, OSError):
        return False
    except Exception:  # a result that cannot be pickled: the caller runs it
        sender.send((False, None))
    return True


def _receive(receiver: Connection) -> tuple[bool, Any, bool]:
    """(delivered, result, worker still alive) of the worker's next message."""
    try:
        if receiver.poll(WORKER_TIMEOUT):
            delivered, value = receiver.recv()
            return delivered, value, True
    except (EOFError, OSError):
        pass
    return False, None, False


# ----------------------------------------------------------------------------- ordered_map


def ordered_map(fn: Callable[[T], R], tasks: Iterable[T], *, parallel: bool | None = None) -> Iterator[R]:
    """`fn(task)` for each task, in order; the odd tasks computed by a forked worker meanwhile.

    `parallel` None decides by `can_fork()`; False runs everything here (what tests compare with).
    Closing the iterator early (the caller raised) kills the worker.
    """
    todo: Sequence[T] = list(tasks)
    if parallel is None:
        parallel = can_fork()
    if not parallel or len(todo) < 2:
        yield from map(fn, todo)
        return
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    worker = _fork(_serve, fn, todo[1::2], sender)
    sender.close()  # the worker holds the only writer: its exit ends the pipe
    alive, finished = True, False
    try:
        for index, task in enumerate(todo):
            if index % 2 == 0:
                yield fn(task)
                continue
            delivered, value = False, None
            if alive:
                delivered, value, alive = _receive(receiver)
            yield value if delivered else fn(task)
        finished = alive
    finally:
        receiver.close()
        if not finished:  # stopped early, or the worker was lost: it has nothing more to give
            worker.kill()
        worker.join()


def _serve(fn: Callable[[T], R], tasks: Sequence[T], sender: Connection) -> None:
    """The worker of `ordered_map`: each of its tasks, in order."""
    for task in tasks:
        if not _deliver(sender, partial(fn, task)):
            return
    sender.close()
