import numpy as np
import pytest

from fnn import init
from fnn.model import init_mlp


def test_xavier_is_glorot_uniform_with_the_right_limit():
    w = init.xavier(np.random.default_rng(0), 300, 100, np.float64)
    limit = np.sqrt(6 / 400)
    assert w.shape == (300, 100)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    assert w.var() == pytest.approx(limit**2 / 3, rel=0.02)  # var of U[-a, a] is a^2 / 3


def test_he_variance():
    w = init.he(np.random.default_rng(0), 400, 300, np.float64)
    assert w.var() == pytest.approx(2 / 400, rel=0.02)
    assert abs(w.mean()) < 0.002


def test_random_normal_stddev():
    w = init.random_normal(np.random.default_rng(0), 400, 300, np.float64)
    assert w.std() == pytest.approx(init.RANDOM_STDDEV, rel=0.02)


@pytest.mark.parametrize("name", ["Xavier", "XAVIER", "random", "He"])
def test_names_case_insensitive_and_biases_zero(name):
    params = init_mlp([5, 4, 3], init=name, seed=1)
    assert not params["layer_0"]["b"].any()
    assert params["layer_0"]["w"].dtype == np.float32


def test_unknown_initialiser():
    with pytest.raises(ValueError, match="random, xavier, he"):
        init_mlp([5, 3], init="orthogonal")
