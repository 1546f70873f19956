"""CPU speed settings measured on the project's 2-core reference machine (see docs/PERFORMANCE.md)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

import torch

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


@functools.cache
def tune_allocator(threshold: int = 32 << 20) -> bool:
    """Keep glibc from returning (and re-faulting) big activation buffers on every step.

    glibc's default dynamic mmap threshold made each forward pass map and unmap its large
    tensors; fixing the thresholds at 32 MB removes that cost. Returns False off glibc.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(M_MMAP_THRESHOLD, threshold) == 1
        ok &= libc.mallopt(M_TRIM_THRESHOLD, 2 * threshold) == 1
        return bool(ok)
    except (OSError, AttributeError):
        return False


def tune_cpu() -> None:
    """Use every core for intra-op work (unless OMP_NUM_THREADS says otherwise) and tune the allocator.

    Honouring OMP_NUM_THREADS matters: two processes of two threads each on two cores ran 10-30x
    slower than two of one thread, as OpenMP threads spin while waiting.
    """
    tune_allocator()
    if os.environ.get("OMP_NUM_THREADS"):
        return
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
