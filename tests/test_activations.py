import warnings

import numpy as np
import pytest

from fnn import activations
from fnn.activations import ACTIVATIONS, softmax

Z = np.array([-1000.0, -30.0, -1.0, 0.0, 0.5, 30.0, 1000.0])


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_stable_at_large_inputs(name):
    act = activations.get(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float32, np.float64):
            out = act.forward(Z.astype(dtype))
            assert np.all(np.isfinite(out))
            assert out.dtype == dtype


def test_reference_values():
    np.testing.assert_array_equal(
        activations.sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0, 0.5, 1]
    )
    np.testing.assert_array_equal(activations.relu(Z), np.maximum(Z, 0))
    np.testing.assert_array_equal(activations.tanh(Z), np.tanh(Z))
    np.testing.assert_array_equal(activations.identity(Z), Z)


@pytest.mark.parametrize("dtype, atol", [(np.float64, 2.3e-16), (np.float32, 1.2e-7)])
def test_sigmoid_accuracy_as_documented(dtype, atol):
    # The docstring's bound: absolute error within about one ulp of 1, against an extended-
    # precision reference 1 / (1 + exp(-z)) over a dense grid and the far tails.
    z = np.concatenate([np.linspace(-40, 40, 20001), [-745.0, -100.0, 100.0, 745.0]])
    reference = 1 / (1 + np.exp(-z.astype(np.longdouble)))
    error = np.abs(activations.sigmoid(z.astype(dtype)).astype(np.longdouble) - reference)
    assert error.max() <= atol
    np.testing.assert_array_equal(activations.relu(Z), np.maximum(Z, 0))
    np.testing.assert_array_equal(activations.tanh(Z), np.tanh(Z))
    np.testing.assert_array_equal(activations.identity(Z), Z)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_backward_from_output_matches_central_difference(name):
    act = activations.get(name)
    z = np.random.default_rng(0).uniform(-3, 3, 50)
    z = z[np.abs(z) > 1e-3]  # away from the ReLU kink
    eps = 1e-6
    numeric = (act.forward(z + eps) - act.forward(z - eps)) / (2 * eps)
    analytic = act.backward(np.ones_like(z), act.forward(z))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["ReLU", "Tanh", "SIGMOID", "identity"])
def test_names_are_case_insensitive(name):
    assert activations.get(name) is ACTIVATIONS[name.lower()]


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="identity, sigmoid, tanh, relu"):
        activations.get("softplus")


def test_softmax_is_stable_and_normalised():
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    probs = softmax(logits)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[1], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
