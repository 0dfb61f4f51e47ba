import copy

import numpy as np
import pytest

import fnn


def make_tree(seed):
    rng = np.random.default_rng(seed)
    return {"a": rng.standard_normal((2, 3)), "b": (rng.standard_normal(4), np.float64(seed))}


def test_sum_scale_inner_product_and_norm_match_numpy():
    a, b, c = make_tree(1), make_tree(2), make_tree(3)
    total = fnn.tree_add(a, b, c)
    np.testing.assert_array_equal(total["a"], a["a"] + b["a"] + c["a"])
    assert total["b"][1] == 6.0 and isinstance(total["b"], tuple)
    np.testing.assert_array_equal(fnn.tree_scale(a, 2.5)["b"][0], 2.5 * a["b"][0])
    flat_a = np.concatenate([np.ravel(x) for x in fnn.tree_leaves(a)])
    flat_b = np.concatenate([np.ravel(x) for x in fnn.tree_leaves(b)])
    assert fnn.tree_vdot(a, b) == pytest.approx(float(flat_a @ flat_b), rel=1e-12)
    assert fnn.global_norm(a) == pytest.approx(float(np.linalg.norm(flat_a)), rel=1e-12)
    assert fnn.global_norm({"x": np.array([3.0, 4.0])}) == 5.0
    with pytest.raises(ValueError, match="structures differ"):
        fnn.tree_add(a, {"a": a["a"]})


def test_float32_stays_float32():
    tree = {"w": np.ones(3, np.float32)}
    assert fnn.tree_scale(tree, 0.5)["w"].dtype == np.float32
    assert fnn.tree_add(tree, tree)["w"].dtype == np.float32


def test_allclose_compares_structure_shapes_and_values():
    a = make_tree(1)
    assert fnn.tree_allclose(a, copy.deepcopy(a), rtol=0)
    assert not fnn.tree_allclose(a, {"a": a["a"]})
    assert not fnn.tree_allclose(a, {**a, "a": a["a"][:, :2]})
    close = fnn.tree_map(lambda x: x * (1 + 1e-9), a)
    assert fnn.tree_allclose(a, close) and not fnn.tree_allclose(a, close, rtol=0)
    nan = {"x": np.array([np.nan, 1.0])}
    assert fnn.tree_allclose(nan, copy.deepcopy(nan), rtol=0)


@pytest.mark.parametrize("name", list(fnn.optimizers.OPTIMIZERS))
def test_states_compare_with_allclose_and_equality_says_so(name):
    params = fnn.init_mlp([3, 4, 2])
    opt = fnn.optimizers.get(name, learning_rate=0.1)
    state = opt.init(params)
    x, y = np.ones((2, 3), np.float32), np.array([0, 1])
    loss, g = fnn.grads(params, x, y)
    _, later = opt.update(g, state, params, loss=loss)
    assert fnn.tree_allclose(state, copy.deepcopy(state), rtol=0)
    if name != "sgd":  # plain SGD's state is its layout alone
        assert not fnn.tree_allclose(state, later)
    with pytest.raises(TypeError, match="fnn.tree_allclose"):
        _ = state == later
    with pytest.raises(TypeError, match="fnn.tree_allclose"):
        _ = state != later


def test_every_state_walks_with_field_names():
    params = fnn.init_mlp([3, 2])
    paths = [path for path, _ in fnn.tree_leaves_with_path(fnn.optimizers.sgd(0.1).init(params))]
    assert paths == []  # the layout is static data, not a leaf
    state = fnn.optimizers.eve(0.1).init(params)
    paths = [path for path, _ in fnn.tree_leaves_with_path(state)]
    assert paths == ["count", "first_moment", "second_moment", "feedback", "smoothed_loss"]
    nested = {"opt": state, "params": params}
    assert "opt/first_moment" in dict(fnn.tree_leaves_with_path(nested))


def test_evaluate_comes_with_import_fnn():
    params = fnn.init_mlp([3, 2])
    metrics = fnn.evaluate(params, np.ones((4, 3), np.float32), np.array([0, 1, 0, 1]))
    assert set(metrics) >= {"loss", "accuracy"}


def test_states_of_different_nets_say_how_their_layouts_differ():
    a = fnn.optimizers.adam(0.1).init(fnn.init_mlp([4, 3]))
    b = fnn.optimizers.adam(0.1).init(fnn.init_mlp([5, 3]))
    with pytest.raises(ValueError, match="a layout of 18 float32 values where it should have a "
                                         "layout of 15 float32 values"):  # fmt: skip
        fnn.tree_add(a, b)
