"""The fast paths (flat buffers, in-place state, fused ops) change no result beyond rounding:
20 steps of the public loop match a plain dict-of-arrays NumPy loop written out here."""

import numpy as np
import pytest

import fnn


def plain_loop(params, batches, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """Per-leaf tanh MLP, softmax cross-entropy and Adam (Kingma & Ba 2015), no tricks."""
    params = {k: {n: a.copy() for n, a in v.items()} for k, v in params.items()}
    names = [f"layer_{i}" for i in range(len(params))]
    m = {k: {n: np.zeros_like(a) for n, a in v.items()} for k, v in params.items()}
    v = {k: {n: np.zeros_like(a) for n, a in v.items()} for k, v in params.items()}
    for t, (x, y) in enumerate(batches, start=1):
        hs = [x]
        for name in names[:-1]:
            hs.append(np.tanh(hs[-1] @ params[name]["w"] + params[name]["b"]))
        z = hs[-1] @ params[names[-1]]["w"] + params[names[-1]]["b"]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        delta = (p - np.eye(z.shape[1])[y]) / len(y)
        grads = {}
        for i in reversed(range(len(names))):
            grads[names[i]] = {"w": hs[i].T @ delta, "b": delta.sum(axis=0)}
            if i:
                delta = (delta @ params[names[i]]["w"].T) * (1 - hs[i] ** 2)
        for k in names:
            for n in ("w", "b"):
                g = grads[k][n]
                m[k][n] = beta1 * m[k][n] + (1 - beta1) * g
                v[k][n] = beta2 * v[k][n] + (1 - beta2) * g * g
                m_hat = m[k][n] / (1 - beta1**t)
                v_hat = v[k][n] / (1 - beta2**t)
                params[k][n] = params[k][n] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 2e-4)])
def test_twenty_steps_match_the_plain_loop(dtype, rtol):
    rng = np.random.default_rng(0)
    params = fnn.init_mlp([30, 16, 16, 10], seed=1, dtype=dtype)
    batches = [(rng.random((8, 30)).astype(dtype), rng.integers(0, 10, 8)) for _ in range(20)]
    expected = plain_loop(params, batches, lr=1e-2)
    opt = fnn.optimizers.adam(1e-2)
    state = opt.init(params)
    ours = params
    for x, y in batches:
        loss, grads = fnn.grads(ours, x, y)
        updates, state = opt.update(grads, state, ours, loss=loss)
        ours = fnn.apply_updates(ours, updates)
    for name in expected:
        for leaf in ("w", "b"):
            assert ours[name][leaf].dtype == dtype
            np.testing.assert_allclose(
                ours[name][leaf], expected[name][leaf], rtol=rtol, atol=rtol * 1e-2
            )
    moved = np.abs(ours["layer_0"]["w"] - params["layer_0"]["w"]).max()
    assert moved > 0.05  # the comparison is not between two untrained nets
