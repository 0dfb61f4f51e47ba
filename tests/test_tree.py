from typing import NamedTuple

import numpy as np
import pytest

import fnn
from fnn.tree import tree_leaves, tree_leaves_with_path, tree_map, tree_zeros_like


class State(NamedTuple):
    count: int
    moments: dict


def make_tree():
    return {
        f"layer_{i}": {"w": np.full((2, 3), float(i)), "b": np.full(3, 10.0 + i)} for i in range(12)
    }


def test_leaves_order_is_natural_and_independent_of_insertion_order():
    tree = make_tree()
    reordered = dict(reversed(list(tree.items())))
    paths = [path for path, _ in tree_leaves_with_path(tree)]
    assert paths[:4] == ["layer_0/b", "layer_0/w", "layer_1/b", "layer_1/w"]
    assert paths[4] == "layer_2/b"  # natural order: layer_2 before layer_10
    assert paths == [path for path, _ in tree_leaves_with_path(reordered)]
    assert all(a is b for a, b in zip(tree_leaves(tree), tree_leaves(reordered), strict=True))


def test_tree_map_over_several_trees_and_namedtuples():
    state = State(3, {"a": np.ones(2), "b": (np.zeros(1), np.ones(1))})
    doubled = tree_map(lambda x, y: x + y, state, state)
    assert isinstance(doubled, State)
    assert doubled.count == 6
    np.testing.assert_array_equal(doubled.moments["a"], [2.0, 2.0])
    assert isinstance(doubled.moments["b"], tuple)


@pytest.mark.parametrize(
    "other",
    [
        {"a": np.ones(2)},
        {"a": np.ones(2), "b": np.ones(2), "c": np.ones(1)},
        {"a": np.ones(2), "c": np.ones(2)},
        {"a": np.ones(2), "b": [np.ones(2)]},
        [np.ones(2), np.ones(2)],
    ],
)
def test_structure_mismatch_raises_value_error(other):
    tree = {"a": np.ones(2), "b": np.ones(2)}
    with pytest.raises(ValueError, match="structures differ"):
        tree_map(lambda x, y: x + y, tree, other)


def test_zeros_like_keeps_shape_and_dtype():
    tree = {"w": np.ones((2, 2), dtype=np.float32), "b": np.ones(2)}
    zeros = tree_zeros_like(tree)
    assert zeros["w"].dtype == np.float32 and zeros["b"].dtype == np.float64
    assert not zeros["w"].any() and zeros["w"].shape == (2, 2)


def test_apply_updates_adds_keeps_dtype_and_does_not_mutate():
    params = {"w": np.ones(3, dtype=np.float32)}
    updates = {"w": np.array([0.5, -1.0, 2.0], dtype=np.float64)}
    new = fnn.apply_updates(params, updates)
    assert new["w"].dtype == np.float32
    np.testing.assert_array_equal(new["w"], [1.5, 0.0, 3.0])
    np.testing.assert_array_equal(params["w"], [1.0, 1.0, 1.0])


def test_apply_updates_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"updates differ from params at w: shape \(3, 1\)"):
        fnn.apply_updates({"w": np.ones(3)}, {"w": np.ones((3, 1))})
    with pytest.raises(ValueError, match="updates differ from params at the root"):
        fnn.apply_updates({"w": np.ones(3)}, {"v": np.ones(3)})


def test_ravel_returns_the_shared_memory_only_when_every_leaf_is_in_place():
    from fnn.tree import ravel

    params = fnn.init_mlp([3, 4, 4, 4, 2], seed=0)
    flat, layout = ravel(params)
    assert all(np.shares_memory(flat, leaf) for leaf in tree_leaves(params))
    assert [path for path, _ in tree_leaves_with_path(params)][:4] == [
        "layer_0/b", "layer_0/w", "layer_1/b", "layer_1/w"
    ]  # fmt: skip
    # views of the same memory in the wrong places are copied, in the tree's own order: two
    # layers of the same shapes swapped (the layout is the same), a strided view in place of w
    swapped = {**params, "layer_1": params["layer_2"], "layer_2": params["layer_1"]}
    assert ravel(swapped)[1] is layout
    strided = {**params, "layer_3": {"w": flat[1:17:2].reshape(4, 2), "b": params["layer_3"]["b"]}}
    for tree in (swapped, strided):
        copy, _ = ravel(tree)
        assert not np.shares_memory(copy, flat)
        expected = np.concatenate([np.ravel(leaf) for leaf in tree_leaves(tree)])
        np.testing.assert_array_equal(copy, expected)
    assert all(np.shares_memory(leaf, flat) for leaf in tree_leaves(layout.unravel(flat)))


def test_unravel_gives_each_leaf_its_own_dtype_back():
    from fnn.tree import ravel

    tree = {"a": np.arange(3, dtype=np.float32), "b": (np.ones((2, 2)), np.int64(4))}
    flat, layout = ravel(tree)
    assert flat.dtype == np.float64 and layout.dtypes[0] == np.float32
    back = layout.unravel(flat)
    assert back["a"].dtype == np.float32 and back["b"][0].dtype == np.float64
    assert back["b"][1].dtype == np.int64 and back["b"][1].shape == ()
    np.testing.assert_array_equal(back["a"], tree["a"])
    with pytest.raises(ValueError, match="a flat array of 8 values expected, got"):
        layout.unravel(np.zeros(7))


def test_a_round_trip_through_ravel_leaves_the_original_tree_usable():
    params = fnn.init_mlp([4, 3, 2], seed=0)
    flat, layout = fnn.ravel(params)
    back = layout.unravel(flat)
    x, y = np.ones((2, 4), np.float32), np.array([0, 1])
    for tree in (params, back):  # both work, and give the same numbers
        np.testing.assert_array_equal(fnn.forward(tree, x), fnn.forward(params, x))
        assert fnn.loss_value(tree, x, y) == fnn.loss_value(params, x, y)
        loss, g = fnn.grads(tree, x, y)
        opt = fnn.optimizers.adam(0.1)
        updates, _ = opt.update(g, opt.init(tree), tree, loss=loss)
        assert fnn.tree_allclose(
            fnn.apply_updates(tree, updates), fnn.apply_updates(back, updates), rtol=0
        )
