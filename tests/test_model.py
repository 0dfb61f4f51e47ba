import zlib

import numpy as np
import pytest

import fnn
from fnn.activations import ACTIVATIONS
from fnn.losses import LOSSES
from fnn.tree import tree_leaves_with_path

ARCHITECTURES = [[7, 5], [7, 6, 5], [7, 6, 4, 5], [6, 3, 3, 3, 4]]


def test_layout_in_forward_order():
    params = fnn.init_mlp([784, 128, 64, 10])
    assert list(params) == ["layer_0", "layer_1", "layer_2"]
    assert params["layer_0"]["w"].shape == (784, 128)
    assert params["layer_0"]["b"].shape == (128,)
    assert params["layer_2"]["w"].shape == (64, 10)
    assert all(leaf.dtype == np.float32 for _, leaf in tree_leaves_with_path(params))


def test_seed_int_and_generator_are_deterministic():
    a = fnn.init_mlp([5, 4, 3], seed=3)
    b = fnn.init_mlp([5, 4, 3], seed=3)
    c = fnn.init_mlp([5, 4, 3], seed=np.random.default_rng(3))
    d = fnn.init_mlp([5, 4, 3], seed=4)
    np.testing.assert_array_equal(a["layer_1"]["w"], b["layer_1"]["w"])
    np.testing.assert_array_equal(a["layer_1"]["w"], c["layer_1"]["w"])
    assert not np.array_equal(a["layer_1"]["w"], d["layer_1"]["w"])


@pytest.mark.parametrize("sizes", [[5], [], [5, 0, 3], [5, 2.5, 3]])
def test_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        fnn.init_mlp(sizes)


def manual_forward(params, x, act):
    h = x.reshape(len(x), -1)
    n = len(params)
    for i in range(n):
        z = h @ params[f"layer_{i}"]["w"] + params[f"layer_{i}"]["b"]
        h = z if i == n - 1 else act(z)
    return h


def test_forward_matches_manual_computation_and_flattens_images():
    params = fnn.init_mlp([784, 16, 10], dtype=np.float64)
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.float64) / 255
    logits = fnn.forward(params, images, activation="relu")
    np.testing.assert_allclose(logits, manual_forward(params, images, lambda z: np.maximum(z, 0)))
    np.testing.assert_array_equal(
        logits, fnn.forward(params, images.reshape(3, -1), activation="ReLU")
    )


def test_float32_in_float32_out():
    params = fnn.init_mlp([6, 5, 3], dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((4, 6))  # float64 input
    assert fnn.forward(params, x).dtype == np.float32
    loss, grads = fnn.grads(params, x, np.array([0, 1, 2, 0]))
    assert isinstance(loss, float)
    assert all(leaf.dtype == np.float32 for _, leaf in tree_leaves_with_path(grads))


@pytest.mark.parametrize("sizes", ARCHITECTURES)
@pytest.mark.parametrize("batch", [1, 9])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_gradients_match_finite_differences(sizes, batch, activation, loss):
    rng = np.random.default_rng(zlib.crc32(repr((sizes, batch, activation, loss)).encode()))
    params = fnn.init_mlp(sizes, seed=rng, dtype=np.float64)
    # Random biases: with zero biases a dead ReLU layer puts the next pre-activations exactly on
    # the kink, where central differences measure half the one-sided slope.
    params = fnn.tree_map(lambda p: p + 0.1 * rng.standard_normal(p.shape) * (p.ndim == 1), params)
    x = rng.standard_normal((batch, sizes[0]))
    y = rng.integers(0, sizes[-1], batch)
    # eps = 1e-5: the central-difference error is O(eps^2) truncation plus O(1e-16 |L| / eps)
    # roundoff; for the small gradients of deep sigmoid nets under MSE the roundoff dominates at
    # eps = 1e-6 (the error falls tenfold from eps = 1e-6 to 1e-5, as roundoff does).
    errors = fnn.gradcheck(params, x, y, activation=activation, loss=loss, eps=1e-5)
    assert sorted(errors) == [path for path, _ in tree_leaves_with_path(params)]
    assert max(errors.values()) <= 1e-7, errors


def test_grads_structure_and_one_hot_targets():
    params = fnn.init_mlp([4, 3, 2], dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((5, 4))
    y = np.array([0, 1, 1, 0, 1])
    loss, grads = fnn.grads(params, x, y)
    loss_one_hot, grads_one_hot = fnn.grads(params, x, np.eye(2)[y])
    assert [p for p, _ in tree_leaves_with_path(grads)] == [
        p for p, _ in tree_leaves_with_path(params)
    ]
    assert loss == pytest.approx(loss_one_hot)
    np.testing.assert_allclose(grads["layer_0"]["w"], grads_one_hot["layer_0"]["w"])
    assert loss == pytest.approx(fnn.loss_value(params, x, y))


def test_gradients_match_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    params = fnn.init_mlp([8, 6, 6, 4], seed=rng, dtype=np.float64)
    x = rng.standard_normal((10, 8))
    y = rng.integers(0, 4, 10)
    for activation, torch_act in [("tanh", torch.tanh), ("sigmoid", torch.sigmoid)]:
        for loss in LOSSES:
            value, grads = fnn.grads(params, x, y, activation=activation, loss=loss)
            tensors = {
                (i, k): torch.tensor(params[f"layer_{i}"][k], requires_grad=True)
                for i in range(3)
                for k in ("w", "b")
            }
            h = torch.tensor(x)
            for i in range(3):
                h = h @ tensors[i, "w"] + tensors[i, "b"]
                if i < 2:
                    h = torch_act(h)
            if loss == "cross_entropy":
                reference = torch.nn.functional.cross_entropy(h, torch.tensor(y))
            else:
                probs = torch.softmax(h, dim=1)
                target = torch.nn.functional.one_hot(torch.tensor(y), 4).double()
                reference = ((probs - target) ** 2).sum(dim=1).mean()
            reference.backward()
            assert value == pytest.approx(reference.item(), rel=1e-12)
            for (i, k), tensor in tensors.items():
                np.testing.assert_allclose(
                    grads[f"layer_{i}"][k], tensor.grad.numpy(), rtol=1e-10, atol=1e-14
                )


def test_bad_inputs_raise_clear_errors():
    params = fnn.init_mlp([4, 3, 2])
    x = np.ones((5, 4))
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4, 3\)"):
        fnn.forward(params, np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fnn.grads(params, x, np.array([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fnn.grads(params, x, np.array([0, 1, -1, 0, 1]))
    with pytest.raises(ValueError, match="do not match the batch"):
        fnn.grads(params, x, np.array([0, 1]))
    with pytest.raises(ValueError, match="integers"):
        fnn.grads(params, x, np.array([0, 1, 0.5, 0, 1]))
    with pytest.raises(ValueError, match="one-hot"):
        fnn.grads(params, x, np.ones((5, 3)))
    with pytest.raises(ValueError, match="valid choices"):
        fnn.grads(params, x, np.zeros(5, int), activation="gelu")
    with pytest.raises(ValueError, match="valid choices"):
        fnn.grads(params, x, np.zeros(5, int), loss="hinge")
    with pytest.raises(ValueError, match="layer_0"):
        fnn.forward({"first": params["layer_0"]}, x)


def test_non_finite_inputs_are_not_fixed():
    params = fnn.init_mlp([3, 2])
    x = np.array([[np.nan, 0.0, 1.0]])
    assert np.isnan(fnn.forward(params, x)).all()
    loss, _ = fnn.grads(params, x, np.array([1]))
    assert np.isnan(loss)


def test_dropout_gradient_matches_finite_differences_under_a_fixed_mask():
    rng = np.random.default_rng(11)
    params = fnn.init_mlp([6, 8, 7, 3], seed=rng, dtype=np.float64)
    x = rng.standard_normal((5, 6))
    y = rng.integers(0, 3, 5)

    def loss_and_grads(p):
        return fnn.grads(p, x, y, dropout=0.4, rng=np.random.default_rng(99))

    _, analytic = loss_and_grads(params)
    eps = 1e-6
    for name in ("layer_0", "layer_1"):
        w = params[name]["w"]
        numeric = np.zeros_like(w)
        for index in np.ndindex(w.shape):
            shifted = [fnn.tree_map(np.copy, params) for _ in range(2)]
            shifted[0][name]["w"][index] += eps
            shifted[1][name]["w"][index] -= eps
            numeric[index] = (loss_and_grads(shifted[0])[0] - loss_and_grads(shifted[1])[0]) / (
                2 * eps
            )
        np.testing.assert_allclose(analytic[name]["w"], numeric, rtol=1e-6, atol=1e-9)


def test_dropout_changes_training_loss_not_evaluation_and_needs_rng():
    params = fnn.init_mlp([6, 8, 3], dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((50, 6))
    y = np.zeros(50, dtype=int)
    plain, _ = fnn.grads(params, x, y)
    dropped, _ = fnn.grads(params, x, y, dropout=0.5, rng=np.random.default_rng(0))
    assert plain != dropped
    assert plain == pytest.approx(fnn.loss_value(params, x, y))
    with pytest.raises(ValueError, match="random generator"):
        fnn.grads(params, x, y, dropout=0.5)
    _, grads32 = fnn.grads(fnn.init_mlp([6, 8, 3]), x, y, dropout=0.5, rng=np.random.default_rng(0))
    assert grads32["layer_0"]["w"].dtype == np.float32


def test_target_rows_must_be_distributions_and_batches_non_empty():
    params = fnn.init_mlp([4, 3])
    x = np.ones((2, 4))
    with pytest.raises(ValueError, match="sum to 1"):
        fnn.grads(params, x, np.array([[0.5, 0.5, 0.5], [0.0, 2.0, 0.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        fnn.grads(params, x, np.array([[-1.0, 2.0, 0.0], [0.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="empty batch"):
        fnn.grads(params, np.zeros((0, 4)), np.zeros(0, int))
    with pytest.raises(ValueError, match="integers"):
        fnn.grads(params, x, np.array([True, False]))


@pytest.mark.parametrize("dropout", [1.0, -0.5])
def test_dropout_out_of_range(dropout):
    params = fnn.init_mlp([4, 3, 2])
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        fnn.grads(params, np.ones((2, 4)), np.array([0, 1]), dropout=dropout,
                  rng=np.random.default_rng(0))  # fmt: skip


def test_malformed_params_are_explained():
    good = fnn.init_mlp([4, 3, 2])
    x = np.ones((2, 4))
    cases = {
        "non-empty dict": {},
        "keys layer_0": {"layer_1": good["layer_0"]},
        "'w' and 'b'": {"layer_0": {"w": good["layer_0"]["w"]}, "layer_1": good["layer_1"]},
        "outputs 3 features": {"layer_0": good["layer_0"],
                               "layer_1": fnn.init_mlp([5, 2])["layer_0"]},
        "b \\(fan_out,\\)": {"layer_0": {"w": good["layer_0"]["w"], "b": np.zeros(4)},
                             "layer_1": good["layer_1"]},
    }  # fmt: skip
    for message, params in cases.items():
        with pytest.raises(ValueError, match=message):
            fnn.forward(params, x)
    with pytest.raises(ValueError, match="non-empty dict"):
        fnn.forward(None, x)
    with pytest.raises(ValueError, match=r"x of shape \(2, 27, 27\)"):
        fnn.forward(good, np.ones((2, 27, 27)))
    with pytest.raises(ValueError, match="sizes"):
        fnn.init_mlp([True, 2])
    with pytest.raises(ValueError, match="float32 or float64"):
        fnn.init_mlp([3, 2], dtype=np.float16)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: {**p, "layer_0": {**p["layer_0"], "w": p["layer_0"]["w"].astype(np.float64)}},
        lambda p: {**p, "layer_1": {**p["layer_1"], "b": p["layer_1"]["b"].astype(np.float64)}},
        lambda p: fnn.tree_map(lambda a: a.astype(np.int64), p),
        lambda p: fnn.tree_map(lambda a: a.astype(np.float16), p),
    ],
)
def test_params_of_mixed_or_non_float_dtypes_are_one_line(change):
    params = change(fnn.init_mlp([3, 4, 2]))
    x, y = np.ones((2, 3), np.float32), np.array([0, 1])
    for call in (fnn.grads, fnn.loss_value):
        with pytest.raises(ValueError, match="params must all be float32 or all float64"):
            call(params, x, y)
