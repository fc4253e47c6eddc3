"""Give freed memory back to the operating system between the big steps of a summary.

Why: the allocators keep what Python and Arrow free for reuse. After the judge's details are read
into the tables, pyarrow's pool (mimalloc) still held about 470 MB and glibc's heap about 150 MB
of freed memory at 100,000 rows: resident, counted against a Lambda's memory, and shared with a
forked worker (`novajudge.parallel`) whose pages are copied as soon as either side reuses them.
Both calls below return only memory no object uses, so they change nothing but the footprint.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache


@cache
def _malloc_trim() -> ctypes._CFuncPtr | None:
    """glibc's `malloc_trim`, or None where there is none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Return the allocators' free memory: pyarrow's pool (when pyarrow is loaded; the Lambda bundle
    has none) and glibc's heap (https://man7.org/linux/man-pages/man3/malloc_trim.3.html)."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
