"""Fused optimizer steps: an optimizer's loop (in ``fnn.optimizers``) compiled by numba, so the
whole update (weight decay, moments, step) is one pass over the flat arrays with no temporary,
where NumPy makes one pass per operation.

Optional and off the import path. With numba installed (``pip install 'fnn[fast]'``) updates
run fused unless ``FNN_FUSED=0``; without it NumPy evaluates the same equations on whole
arrays. ``import fnn`` never imports numba: the first fused update does, and compiles its loop
once per dtype into numba's cache (``cache=True``: beside ``fnn/`` when that folder is
writable, else in ``$NUMBA_CACHE_DIR`` or ``~/.cache``), so later processes load it.

Why the two paths agree bit for bit: the loop calls the very function NumPy evaluates, element
by element, with the same scalars in the arrays' dtype (NumPy casts a Python float to float32
as well, NEP 50). Every operation in it (+, -, *, /, sqrt) is correctly rounded in IEEE
arithmetic, whether a SIMD lane or NumPy's loop does it, as long as the compiler keeps each
operation as written: numba's default (no ``fastmath``) allows no reassociation and no fused
multiply-add. ``error_model="numpy"`` makes a division by zero give inf or nan as NumPy does,
instead of a check that raises (and that stops LLVM from vectorising the loop: 7x slower).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable

import numpy as np

FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # numba's float types
_SCALAR_FUNCTIONS: list[Callable] = []  # marked ``compilable``
_REGISTERED: set[Callable] = set()  # of those, the ones numba has been told about


def compilable(function: Callable) -> Callable:
    """Mark ``function`` (equations on numbers, written with operators and ufuncs such as
    ``np.sqrt``) as callable from a compiled loop, and return it unchanged."""
    _SCALAR_FUNCTIONS.append(function)
    return function


def unavailable() -> str | None:
    """Why updates do not run fused (``None`` when they do): ``FNN_FUSED=0``, or numba is not
    installed. Read when an optimizer is made, without importing numba."""
    if os.environ.get("FNN_FUSED", "").strip() == "0":
        return "FNN_FUSED=0"
    if importlib.util.find_spec("numba") is None:
        return "numba is not installed: pip install 'fnn[fast]'"
    return None


def describe() -> str:
    """Which path an optimizer made now runs, for a start line or a benchmark: ``fused
    (numba 0.68.1)`` or ``numpy (FNN_FUSED=0)``."""
    reason = unavailable()
    if reason is None:
        return f"fused (numba {importlib.metadata.version('numba')})"
    return f"numpy ({reason.split(':')[0]})"


@functools.cache
def compiled(loop: Callable) -> Callable:
    """``loop`` compiled by numba (imported here, on the first call): no fastmath, NumPy's
    error model, cached on disk."""
    import numba
    from numba.extending import register_jitable

    for function in _SCALAR_FUNCTIONS:
        if function not in _REGISTERED:
            register_jitable(function)
            _REGISTERED.add(function)
    return numba.njit(cache=True, error_model="numpy")(loop)


def run(loop: Callable, g: np.ndarray, params: np.ndarray | None, decay: float,
        moments: list[np.ndarray], coefficients: tuple) -> list[np.ndarray]:  # fmt: skip
    """``[update, *new moments]``: new flat arrays that the compiled ``loop`` fills from the
    flat grads, params (read only with a ``decay``), moments and the step's coefficients."""
    outputs = list(map(np.empty_like, [g] * (1 + len(moments))))
    decay = g.dtype.type(decay)
    compiled(loop)(g, g if params is None else params, decay, *moments, coefficients, *outputs)
    return outputs
