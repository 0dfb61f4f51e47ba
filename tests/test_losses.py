import numpy as np
import pytest

from fnn import losses
from fnn.gradcheck import TOLERANCE
from fnn.losses import LOSSES, cross_entropy, log_softmax, mean_squared_error, one_hot

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((6, 4))
LABELS = np.array([0, 3, 1, 2, 3, 0])


def reference_cross_entropy(logits, labels):
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return -np.mean(np.log(probs[np.arange(len(labels)), labels]))


def reference_mse(logits, labels):
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return np.mean(((probs - np.eye(logits.shape[1])[labels]) ** 2).sum(axis=1))


@pytest.mark.parametrize(
    "loss_fn, reference",
    [(cross_entropy, reference_cross_entropy), (mean_squared_error, reference_mse)],
)
def test_value_matches_direct_formula(loss_fn, reference):
    value, _ = loss_fn(LOGITS, LABELS)
    assert value == pytest.approx(reference(LOGITS, LABELS), rel=1e-12)
    one_hot_value, _ = loss_fn(LOGITS, one_hot(LABELS, 4))
    assert one_hot_value == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("loss_fn", [cross_entropy, mean_squared_error])
def test_gradient_matches_central_differences(loss_fn):
    _, grad = loss_fn(LOGITS, LABELS)
    eps = 1e-6
    numeric = np.zeros_like(LOGITS)
    for index in np.ndindex(LOGITS.shape):
        step = np.zeros_like(LOGITS)
        step[index] = eps
        numeric[index] = (loss_fn(LOGITS + step, LABELS)[0] - loss_fn(LOGITS - step, LABELS)[0]) / (
            2 * eps
        )
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-10)
    _, grad_one_hot = loss_fn(LOGITS, one_hot(LABELS, 4))
    np.testing.assert_allclose(grad_one_hot, grad, rtol=1e-12)


def test_mse_gradient_includes_softmax_jacobian():
    # Without the Jacobian the gradient would be 2 (p - y) / B, whose rows do not sum to zero.
    _, grad = mean_squared_error(LOGITS, LABELS)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)
    naive = 2 * (probs - np.eye(4)[LABELS]) / len(LABELS)
    assert np.abs(grad - naive).max() > 1e-3


def test_extreme_logits_stay_finite():
    logits = np.array([[1000.0, -1000.0, 0.0]])
    for loss_fn in LOSSES.values():
        value, grad = loss_fn(logits, np.array([1]))
        assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert cross_entropy(logits, np.array([1]))[0] == pytest.approx(2000.0)
    np.testing.assert_allclose(log_softmax(logits), [[0.0, -2000.0, -1000.0]])


def test_registry():
    assert losses.get("Cross_Entropy") is cross_entropy
    with pytest.raises(ValueError, match="mean_squared_error"):
        losses.get("hinge")


def squared_logit_error(logits, targets):
    """A user's loss: the squared distance of the logits themselves from the one-hot targets,
    L = (1/B) sum_b sum_k (z_bk - onehot_bk)^2, dL/dz = 2 (z - onehot) / B."""
    batch, classes = logits.shape
    error = logits - np.eye(classes)[targets]
    return float((error**2).sum()) / batch, 2.0 * error / batch


def test_a_users_loss_trains_and_passes_the_gradient_check():
    import fnn

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 5))
    y = rng.integers(0, 3, 32)
    params = fnn.init_mlp([5, 4, 3], dtype=np.float64)
    errors = fnn.gradcheck(params, x[:6], y[:6], loss=squared_logit_error)
    assert max(errors.values()) < TOLERANCE
    opt = fnn.optimizers.adam(0.05)
    state, first = opt.init(params), fnn.loss_value(params, x, y, loss=squared_logit_error)
    for _ in range(50):
        loss, g = fnn.grads(params, x, y, loss=squared_logit_error)
        updates, state = opt.update(g, state, params, loss=loss)
        params = fnn.apply_updates(params, updates)
    assert fnn.loss_value(params, x, y, loss=squared_logit_error) < 0.8 * first
    metrics = fnn.evaluate(params, x, y, loss=squared_logit_error)
    assert metrics["loss"] == pytest.approx(fnn.loss_value(params, x, y, loss=squared_logit_error))


def test_a_wrong_user_gradient_fails_the_check_and_a_wrong_shape_is_one_line():
    import fnn

    def doubled(logits, targets):
        loss, grad = squared_logit_error(logits, targets)
        return loss, 2 * grad

    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    params = fnn.init_mlp([5, 4, 3], dtype=np.float64)
    assert max(fnn.gradcheck(params, x, y, loss=doubled).values()) > 0.1
    with pytest.raises(ValueError, match=r"the loss gradient must have the logits' shape \(6, 3\)"):
        fnn.grads(params, x, y, loss=lambda logits, targets: (1.0, logits[:, :2]))
    with pytest.raises(ValueError, match="loss must be a name .* or a function"):
        fnn.grads(params, x, y, loss=3)


def test_a_loss_per_sample_instead_of_the_mean_is_one_line():
    import fnn

    params = fnn.init_mlp([3, 2])
    x, y = np.ones((4, 3), np.float32), np.array([0, 1, 0, 1])

    def per_sample(logits, targets):
        return np.ones(len(targets)), np.zeros_like(logits)

    for call in (fnn.grads, fnn.loss_value, fnn.evaluate):
        with pytest.raises(ValueError, match=r"mean over the batch as one number .* shape \(4,\)"):
            call(params, x, y, loss=per_sample)
