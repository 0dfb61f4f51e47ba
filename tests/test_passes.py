"""fnn.passes: equations recorded once and replayed as NumPy passes give the bits of the
equations evaluated as plain expressions, and write no more new arrays than they must."""

from __future__ import annotations

import numpy as np
import pytest

from fnn import passes, rules

RULES = [  # (equations, arrays, numbers, new arrays the passes write)
    (rules.sgd_elements, 1, 1, 1),
    (rules.momentum_elements, 2, 2, 2),
    (rules.nag_elements, 2, 2, 2),
    (rules.rmsprop_elements, 2, 3, 2),
    (rules.adam_elements, 3, 4, 3),  # its three results, as hand-written out= passes
    (rules.nadam_elements, 3, 6, 4),  # and one for the second half of m-hat
]


@pytest.mark.parametrize(("equations", "arrays", "numbers", "written"), RULES,
                         ids=[rule[0].__name__ for rule in RULES])  # fmt: skip
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_passes_give_the_expressions_bits_in_as_few_new_arrays(
    equations, arrays, numbers, written, dtype
):
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal(1001).astype(dtype) for _ in range(arrays)]
    inputs[1:] = [np.abs(x) for x in inputs[1:]]  # second moments are non-negative
    coefficients = [dtype(c) for c in rng.uniform(0.01, 1, numbers)]
    recorded = passes.record(equations, arrays, numbers)
    before = [x.copy() for x in inputs]
    got = recorded.run(*inputs, *coefficients)
    expected = equations(*inputs, *coefficients)
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected, strict=True):
        assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes()
    assert recorded.arrays == written
    assert len({id(x) for x in got}) == len(got)  # each result its own new array
    assert all(np.shares_memory(x, y) is False for x in got for y in inputs)
    for x, y in zip(inputs, before, strict=True):  # the inputs are only read
        assert np.array_equal(x, y)


def test_numbers_and_reflected_operators_are_recorded():
    def equations(x, y, a, b):
        z = b - x / (b + y) * a  # numbers on either side of an array
        return -z, np.sqrt(z * z), a * a  # the last made of numbers only

    x, y = np.linspace(0.5, 2, 7), np.linspace(1, 3, 7)
    got = passes.record(equations, 2, 2).run(x, y, 0.25, 2.0)
    expected = equations(x, y, 0.25, 2.0)
    for ours, theirs in zip(got, expected, strict=True):
        assert np.array_equal(ours, theirs)
    assert got[2] == 0.0625


@pytest.mark.parametrize(
    ("equations", "message"),
    [
        (lambda x, a: (x * 0.9,), "every number as a coefficient, got the constant 0.9"),
        (lambda x, a: (1 - x,), "got the constant 1"),
        (lambda x, a: (np.exp(x),), r"\+, -, \*, / and np.sqrt only .*not exp"),
        (lambda x, a: (x if x else a,), "cannot branch on a value"),
        (lambda x, a: (x * (x == a),), "cannot compare values"),
        (lambda x, a: (x * a, x), "no input as it is"),
        (lambda x, a: (x * a,) * 2, "each result once"),
    ],
    ids=["float", "int", "exp", "branch", "compare", "input", "twice"],
)
def test_what_the_compiled_loop_would_round_otherwise_is_refused(equations, message):
    # each would make the passes and numba's loop disagree (or alias what must be new arrays)
    with pytest.raises(TypeError, match=message):
        passes.record(equations, 1, 1)
