"""Fused optimizer steps: an optimizer's loop (in ``fnn.rules``) compiled by numba, so the whole
update (weight decay, moments, step and, for ``Optimizer.step``, its addition to the params) is
one pass over the flat arrays with no temporary, where NumPy makes one pass per operation.

Optional and off the import path. With numba installed (``pip install 'fnn[fast]'``) updates
run fused unless ``FNN_FUSED=0``; without it NumPy evaluates the same equations on whole
arrays. ``import fnn`` never imports numba: the first fused update (or ``describe``) does. An
update compiles its loop once per dtype into numba's cache (``cache=True``: beside ``fnn/``
when that folder is writable, unless ``$NUMBA_CACHE_DIR`` names another), so later processes
load it. numba checks the cache against ``fnn/rules.py`` (where the loops and the equations
they call live, as they must for that check to see a change) but not against the options below.

Why the two paths agree bit for bit: the loop calls, element by element, the very equations
whose passes NumPy replays (``fnn.passes``), with every number given as a coefficient in the
arrays' dtype (a literal such as ``0.9`` would be float64 in numba, so equations may hold
none). Every operation in them (+, -, *, /, sqrt) is correctly rounded in IEEE arithmetic,
whether a SIMD lane or NumPy's loop does it, as long as the compiler keeps each operation as
written: numba's default (no ``fastmath``) allows no reassociation and no fused multiply-add.
``error_model="numpy"`` makes a division by zero give inf or nan as NumPy does, instead of a
check that raises (and that stops LLVM from vectorising the loop: 7x slower).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
import threading
import warnings
from collections.abc import Callable

import numpy as np

FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # numba's float types
OFF = ("0", "false", "no", "off")  # values of FNN_FUSED that turn the fused path off
_COMPILABLE: list[Callable] = []  # the functions marked ``compilable``
_REGISTERED: set[Callable] = set()  # of those, the ones numba has been told about
_COMPILED: dict[Callable, Callable | None] = {}  # loop -> numba's, or None (numba is broken)
_COMPILING = threading.Lock()  # one thread compiles a loop; the others wait and reuse it


def compilable(function: Callable) -> Callable:
    """Mark ``function`` (equations on numbers: +, -, *, / and ``np.sqrt``) as callable from
    a compiled loop, and return it unchanged."""
    _COMPILABLE.append(function)
    return function


def is_compilable(function: Callable) -> bool:
    """Whether ``function`` was marked ``compilable``."""
    return function in _COMPILABLE


def unavailable() -> str | None:
    """Why updates do not run fused (``None`` when they do): ``FNN_FUSED=0`` (or false, no,
    off), or numba is not installed. Read when an optimizer is made, without importing numba."""
    if os.environ.get("FNN_FUSED", "").strip().lower() in OFF:
        return "FNN_FUSED=0"
    if importlib.util.find_spec("numba") is None:
        return "numba is not installed: pip install 'fnn[fast]'"
    return None


def describe() -> str:
    """Which path an optimizer made now runs, for a start line or a benchmark: ``fused
    (numba 0.68.1)``, ``numpy (FNN_FUSED=0)``, or ``numpy (numba cannot be imported)`` when an
    installed numba fails to import (this imports it, as the first fused update would)."""
    reason = unavailable()
    if reason is not None:
        return f"numpy ({reason.split(':')[0]})"
    if None in _COMPILED.values() or _numba_error() is not None:
        return "numpy (numba cannot be imported)"
    try:
        return f"fused (numba {importlib.metadata.version('numba')})"
    except importlib.metadata.PackageNotFoundError:
        return "fused (numba)"


def _numba_error() -> str | None:
    """Why numba cannot be imported, in one line, or None once it is. A broken install fails in
    more ways than ImportError (llvmlite's missing library is an OSError; a NumPy numba was
    not built for, an ImportError or an AttributeError)."""
    try:
        import numba  # noqa: F401
    except Exception as error:
        return " ".join(str(error).split()) or type(error).__name__
    return None


def compiled(loop: Callable) -> Callable | None:
    """``loop`` compiled by numba (imported here, on the first call): no fastmath, NumPy's
    error model, cached on disk. An optimizer asks once, at its first update, and then calls
    the result with its flat arrays: ``loop(g, params, decay, apply, *moments, coefficients,
    out, *new moments)`` (``fnn.optimizers.Rule``). ``None``, with a warning the first time,
    when numba is installed but cannot be imported (built for another NumPy, say): the update
    then runs on NumPy's path."""
    kernel = _COMPILED.get(loop, False)
    if kernel is not False:
        return kernel
    with _COMPILING:
        if loop not in _COMPILED:
            _COMPILED[loop] = _compile(loop)
    return _COMPILED[loop]


def _compile(loop: Callable) -> Callable | None:
    error = _numba_error()
    if error is not None:
        warnings.warn(f"numba cannot be imported ({error}); updates run on NumPy's path "
                      "(FNN_FUSED=0 says so without this warning)",
                      stacklevel=_caller())  # fmt: skip
        return None
    import numba
    from numba.extending import register_jitable

    for function in _COMPILABLE:
        if function not in _REGISTERED:
            register_jitable(function)
            _REGISTERED.add(function)
    try:
        return numba.njit(cache=True, error_model="numpy")(loop)
    except RuntimeError as error:  # no folder to cache in: compile in every process instead
        warnings.warn(f"numba cannot cache the compiled updates ({error}); set NUMBA_CACHE_DIR "
                      "to a writable folder to compile them once",
                      stacklevel=_caller())  # fmt: skip
        return numba.njit(error_model="numpy")(loop)


def _caller() -> int:
    """The ``stacklevel`` of a warning issued by this function's caller that names the first
    frame outside the core (``fnn/*.py``): the user's ``opt.update`` or ``opt.step`` line,
    however many of the core's calls (a chain, ``step``, ``apply``) lie between."""
    core, frame, level = os.path.dirname(__file__), sys._getframe(1), 1
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == core:
        frame, level = frame.f_back, level + 1
    return level
