"""Freed memory kept for reuse, so pure functions cost what in-place code costs.

fnn's functions return new arrays (the gradients, the optimizer state, the updates, the
params: about 0.5 MB each for a 135k-parameter MLP) and the previous step's arrays are freed.
glibc's malloc serves blocks of that size with ``mmap`` or gives the top of its heap back to
the system once more than ``M_TRIM_THRESHOLD`` is free, so every step page-faults its arrays
in again: measured at 2.6x the time of the same Adam update on reused memory. JAX and PyTorch
avoid this with their own allocators; ``keep_freed_memory`` asks glibc (``mallopt``) to serve
blocks below 32 MiB from the heap and keep up to 256 MiB of freed heap, so the next step reuses
the same pages. Only speed changes, never a result. ``import fnn`` calls it once; set the
environment variable ``FNN_MALLOC_TUNING=0`` to leave malloc as it is.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest accepted value on 64-bit systems
TRIM_THRESHOLD = 256 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds for this process; True if it was done
    (False on other C libraries, or with ``FNN_MALLOC_TUNING=0``)."""
    if os.environ.get("FNN_MALLOC_TUNING", "1").strip() == "0":
        return False
    try:
        os.confstr("CS_GNU_LIBC_VERSION")
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
