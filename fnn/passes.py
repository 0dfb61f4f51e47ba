"""A rule's equations as NumPy passes over whole arrays, with no temporary a pass can avoid.

An optimizer states its rule once, as equations on numbers (``fnn.optimizers``): numba runs them
element by element in one compiled loop (``fnn.fused``), and NumPy runs them here, on whole
flat arrays. Evaluating them as plain expressions would make a new array per operation (Adam:
five, where three are its results). So ``record`` calls the equations once on placeholders,
which note each operation (+, -, *, / and ``np.sqrt``) in order, and chooses where each result
goes: into the array of an operand made earlier in the same update that no later operation
reads (in place), else into a new array. ``Passes.run`` replays that, one ufunc call with
``out=`` per operation: Adam's eleven passes write exactly its three new arrays, as
hand-written ``out=`` passes do. The arithmetic is the same ufunc calls either way, so the
results are bit for bit those of the expressions and of the compiled loop. To keep them so,
``record`` refuses what the compiled loop would round otherwise: a constant (numba computes a
literal in float64: pass it as a coefficient), a ufunc other than those five operations and
``np.sqrt`` (numba's ``exp`` is not NumPy's), a branch or a comparison on a value, and a result
that is an input or is returned twice (the loop writes each result into a new array).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

EXACT = (np.add, np.subtract, np.multiply, np.divide, np.negative, np.sqrt)  # IEEE-exact
EXTRA = ("np.sqrt",)  # how an equation writes the one above that has no operator


class Passes(NamedTuple):
    """The recorded equations: ``operations`` are ``(ufunc, operand slots, result slot, array)``
    in order, ``array`` numbering the new array the result is written into (``None`` for a
    result made of numbers only); slots number the inputs, then the results."""

    operations: tuple[tuple[Any, tuple[int, ...], int, int | None], ...]
    results: tuple[int, ...]
    arrays: int  # how many new arrays the passes write

    def run(self, *inputs: Any) -> tuple:
        """The equations' results for ``inputs`` (the arrays first, all of one shape)."""
        values = [*inputs, *[None] * len(self.operations)]
        arrays = list(map(np.empty_like, [inputs[0]] * self.arrays))
        for ufunc, operands, result, array in self.operations:
            if array is None:  # numbers only
                values[result] = ufunc(*map(values.__getitem__, operands))
            else:
                values[result] = ufunc(*map(values.__getitem__, operands), out=arrays[array])
        return tuple(map(values.__getitem__, self.results))


def _operator(ufunc, reflected: bool = False) -> Callable:
    """The method behind ``x + y`` (``y + x`` when ``reflected``) on a placeholder: it notes
    the ufunc."""

    def operator(self, other):
        return self.tape.note(ufunc, (other, self) if reflected else (self, other))

    return operator


class _Placeholder:
    """A value of the equations while ``record`` calls them: operators and ufuncs note the
    operation on the tape and give the placeholder of its result."""

    __array_priority__ = 100  # NumPy scalars defer to it (so ``np.float32(2) * x`` is noted)

    def __init__(self, tape: _Tape, slot: int, is_array: bool):
        self.tape, self.slot, self.is_array = tape, slot, is_array

    def __array_ufunc__(self, ufunc, method, *args, **kwargs):
        if method != "__call__" or kwargs or ufunc not in EXACT:
            raise TypeError(
                f"a rule's equations use +, -, *, / and {', '.join(EXTRA)} only "
                f"(correctly rounded alike by NumPy and numba), not {ufunc.__name__}"
            )
        return self.tape.note(ufunc, args)

    __add__, __radd__ = _operator(np.add), _operator(np.add, reflected=True)
    __sub__, __rsub__ = _operator(np.subtract), _operator(np.subtract, reflected=True)
    __mul__, __rmul__ = _operator(np.multiply), _operator(np.multiply, reflected=True)
    __truediv__, __rtruediv__ = _operator(np.divide), _operator(np.divide, reflected=True)

    def __neg__(self):
        return self.tape.note(np.negative, (self,))

    def __bool__(self):
        raise TypeError("a rule's equations cannot branch on a value; give them numbers instead")

    def __eq__(self, other):
        raise TypeError("a rule's equations cannot compare values")

    __ne__ = __eq__
    __hash__ = object.__hash__


class _Tape:
    """The operations noted so far, as ``(ufunc, operand slots, result placeholder)``; slots
    number the inputs, then the results in order."""

    def __init__(self, inputs: int):
        self.inputs, self.operations = inputs, []

    def note(self, ufunc, args: tuple) -> _Placeholder:
        slot = self.inputs + len(self.operations)
        result = _Placeholder(self, slot, any(getattr(a, "is_array", False) for a in args))
        self.operations.append((ufunc, tuple(self.slot(a) for a in args), result))
        return result

    def slot(self, value: Any) -> int:
        if not isinstance(value, _Placeholder):
            raise TypeError(
                f"a rule's equations take every number as a coefficient, got the "
                f"constant {value!r} (numba would compute it in float64)"
            )
        return value.slot


@functools.cache
def record(equations: Callable[..., tuple], arrays: int, numbers: int) -> Passes:
    """The passes of ``equations(*arrays, *numbers) -> tuple`` (remembered per function)."""
    tape = _Tape(arrays + numbers)
    inputs = [_Placeholder(tape, i, i < arrays) for i in range(arrays + numbers)]
    results = [tape.slot(value) for value in equations(*inputs)]
    if len(set(results)) < len(results) or min(results, default=tape.inputs) < tape.inputs:
        raise TypeError("a rule's equations return each result once, and no input as it is")
    operations = tape.operations
    last_read = {slot: i for i, (_, operands, _) in enumerate(operations) for slot in operands}
    array_of: dict[int, int] = {}  # result slot -> the new array that holds it
    free: list[int] = []  # arrays whose value no later operation reads
    passes = []
    for index, (ufunc, operands, result) in enumerate(operations):
        array = None
        if result.is_array:  # into an operand's array read for the last time, else a free one
            read_last = [slot for slot in operands if slot in array_of and slot not in results
                         and last_read[slot] == index]  # fmt: skip
            dying = list(dict.fromkeys(array_of[slot] for slot in read_last))
            array = dying.pop(0) if dying else free.pop() if free else len(set(array_of.values()))
            free += dying
            array_of[result.slot] = array
        passes.append((ufunc, operands, result.slot, array))
    return Passes(tuple(passes), tuple(results), len(set(array_of.values())))
