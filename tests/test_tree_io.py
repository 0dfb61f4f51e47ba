import numpy as np
import pytest

import fnn


def trained(name):
    params = fnn.init_mlp([3, 4, 2])
    opt = fnn.optimizers.get(name, learning_rate=0.01)
    state = opt.init(params)
    x, y = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32), np.arange(5) % 2
    for _ in range(3):
        loss, g = fnn.grads(params, x, y)
        updates, state = opt.update(g, state, params, loss=loss)
        params = fnn.apply_updates(params, updates)
    return params, opt, state


@pytest.mark.parametrize("name", list(fnn.optimizers.OPTIMIZERS))
def test_every_state_round_trips_through_a_file(name, tmp_path):
    params, opt, state = trained(name)
    tree = {"params": params, "state": state}
    fnn.save_tree(tmp_path / "run.npz", tree)
    template = {"params": fnn.init_mlp([3, 4, 2]), "state": opt.init(fnn.init_mlp([3, 4, 2]))}
    back = fnn.load_tree(tmp_path / "run.npz", template)
    assert fnn.tree_allclose(back, tree, rtol=0)
    assert type(back["state"]) is type(state) and back["state"].layout == state.layout
    for field in ("count", "feedback", "smoothed_loss"):
        if hasattr(state, field):
            assert type(getattr(back["state"], field)) is type(getattr(state, field))
    assert back["params"]["layer_0"]["w"].dtype == np.float32


def test_arrays_are_named_by_path():
    params, _, state = trained("adam")
    arrays = fnn.to_arrays({"p": params, "s": state})
    assert sorted(arrays) == ["p/layer_0/b", "p/layer_0/w", "p/layer_1/b", "p/layer_1/w",
                              "s/count", "s/first_moment", "s/second_moment"]  # fmt: skip
    assert arrays["s/count"].shape == () and int(arrays["s/count"]) == 3


def test_a_file_that_does_not_fit_the_template_is_one_line(tmp_path):
    params, _, _ = trained("sgd")
    arrays = fnn.to_arrays(params)
    template = fnn.init_mlp([3, 4, 2])
    with pytest.raises(ValueError, match="the arrays have no layer_1/w"):
        fnn.from_arrays(template, {k: v for k, v in arrays.items() if k != "layer_1/w"})
    with pytest.raises(ValueError, match="the arrays hold extra/x, which the template has not"):
        fnn.from_arrays(template, {**arrays, "extra/x": np.ones(1)})
    with pytest.raises(
        ValueError, match=r"layer_0/b has shape \(4,\) where the template has \(5,\)"
    ):
        fnn.from_arrays(fnn.init_mlp([3, 5, 2]), arrays)
    with pytest.raises(ValueError, match="is not numeric"):
        fnn.save_tree(tmp_path / "x.npz", {"a": np.array(["text"], dtype=object)})
    assert not (tmp_path / "x.npz").exists()


def test_loading_never_unpickles(tmp_path):
    np.savez(tmp_path / "evil.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        fnn.load_tree(tmp_path / "evil.npz", {"a": np.ones(1)})


def test_a_training_checkpoint_is_a_saved_tree(tmp_path):
    """fit's checkpoint arrays (what ``fnn train --save`` writes to state.npz with np.savez)
    are ``to_arrays`` of params, best params and optimizer state: load_tree reads them."""
    from fnn.data import Splits
    from fnn.train import TrainConfig, fit

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((48, 6)).astype(np.float32), rng.integers(0, 3, 48)
    splits = Splits(x[:32], y[:32], x[32:], y[32:], x[32:], y[32:])
    config = TrainConfig(epochs=1, batch_size=16, hidden_size=5, num_layers=1, patience=2)
    kept = []
    model, _ = fit(config, splits, on_checkpoint=lambda m, s, a: kept.append(a))
    np.savez(tmp_path / "state.npz", **kept[-1])
    params = fnn.init_mlp([6, 5, 3])
    schedule = fnn.optimizers.cosine_decay_schedule(config.learning_rate, 2)  # 2 updates
    template = {"params": params, "best": params, "opt": fnn.optimizers.adam(schedule).init(params)}
    loaded = fnn.load_tree(tmp_path / "state.npz", template)
    assert fnn.tree_allclose(loaded["best"], model, rtol=0)
    assert loaded["opt"][0].count == 2 and loaded["opt"][1].count == 2


def test_any_path_saves_and_a_failed_save_keeps_the_earlier_file(tmp_path):
    path = tmp_path / "tree.npz"
    tree = {"file": np.ones(2), "allow_pickle": np.zeros(1), "kwds": {"args": np.int64(3)}}
    fnn.save_tree(path, tree)
    template = {"file": np.zeros(2), "allow_pickle": np.ones(1), "kwds": {"args": np.int64(0)}}
    assert fnn.tree_allclose(fnn.load_tree(path, template), tree, rtol=0)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="is not numeric"):
        fnn.save_tree(path, {"a": np.array(["text"], dtype=object)})
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "tree.npz"
    ]


def test_scalars_come_back_in_the_templates_type():
    back = fnn.from_arrays({"lr": np.float64(0.1), "count": 0}, {"lr": np.array(0.2), "count": 2})
    assert type(back["lr"]) is np.float64 and type(back["count"]) is int and back["count"] == 2
    with pytest.raises(ValueError, match="count is 2.7 where the template has an integer"):
        fnn.from_arrays({"count": 0}, {"count": np.array(2.7)})
