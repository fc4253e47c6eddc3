"""`map` over ordered tasks on two cores: every other task runs in one forked worker process.

Why a process and not a thread: the work it serves (reading the judge's `metrics` cells, drawing
the summary figure) is mostly Python bytecode, which holds the GIL; a translate-ahead thread was
measured slower than none. Why fork: the worker starts with the caller's data already in memory
(copy-on-write), so nothing is pickled on the way in and only the results travel back, through a
pipe. AWS Lambda supports `multiprocessing.Process` and `Pipe` (not `Pool` or `Queue`, which need
/dev/shm): https://aws.amazon.com/blogs/compute/parallel-processing-in-python-with-aws-lambda/

The caller sees `map(fn, tasks)`: results in task order, the first failing task's exception raised
at its turn. A task the worker does not deliver (it raised, died, or sent nothing for
`WORKER_TIMEOUT` seconds) is run again by the caller, so the error raised is the genuine one, with
its traceback, and a lost worker costs time, never a result. One core (or no fork) runs the
tasks in the caller, one after the other.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import TypeVar

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
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=_serve, args=(fn, todo[1::2], sender), daemon=True)
    # The caller's objects go to the collector's permanent generation while the worker forks, so
    # the worker's collections never walk (and write to, so copy) the pages they share; the Python
    # docs' recipe for fork (https://docs.python.org/3/library/gc.html#gc.freeze).
    gc.freeze()
    try:
        worker.start()
    finally:
        gc.unfreeze()
    sender.close()  # the worker holds the only writer: its exit ends the pipe
    alive, finished = True, False
    try:
        for index, task in enumerate(todo):
            if index % 2 == 0:
                yield fn(task)
                continue
            delivered, value = False, None
            if alive:
                try:
                    if receiver.poll(WORKER_TIMEOUT):
                        delivered, value = receiver.recv()
                    else:
                        alive = False
                except (EOFError, OSError):
                    alive = False
            yield value if delivered else fn(task)
        finished = alive
    finally:
        receiver.close()
        if not finished:  # stopped early, or the worker was lost: it has nothing more to give
            worker.kill()
        worker.join()


def _serve(fn: Callable[[T], R], tasks: Sequence[T], sender: Connection) -> None:
    """The worker: each task's (delivered, result), in order; a failure is left to the caller."""
    for task in tasks:
        try:
            result = (True, fn(task))
        except BaseException:  # the caller runs the task again and raises it itself
            result = (False, None)
        try:
            sender.send(result)
        except (BrokenPipeError, OSError):
            return  # the caller stopped listening
        except Exception:  # a result that cannot be pickled: the caller runs it
            sender.send((False, None))
    sender.close()
