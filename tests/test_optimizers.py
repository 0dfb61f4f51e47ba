"""fnn.optimizers against independent references: first steps worked out by hand, PyTorch's
torch.optim (20 float64 steps), and NumPy transcriptions of the NAdam (Dozat 2016, Alg. 2) and
Eve (Koushik & Hayashi 2016, arXiv:1611.01505v1, Alg. 1) papers; then dtypes, purity, registry."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
from conftest import assert_same_tree

import fnn
from fnn.optimizers import EveState, get

# every test here runs on both paths of the updates (NumPy, and numba's fused loops)
pytestmark = pytest.mark.usefixtures("update_path")

NAMES = ["sgd", "momentum", "nag", "rmsprop", "adam", "nadam", "eve"]
WEIGHT_DECAYS = [0.0, 0.01]
STEPS = 20
TOLERANCE = 1e-6  # the float64 runs agree to ~1e-15; this only absorbs summation order

# (layer, parameter, shape) of a small two-layer MLP; the order is fixed here, not by fnn.tree.
LEAVES = [("layer_0", "w", (3, 4)), ("layer_0", "b", (4,)), ("layer_1", "w", (4, 2)),
          ("layer_1", "b", (2,))]  # fmt: skip

# Non-default hyperparameters, shared by the torch and paper comparisons.
HPARAMS = {
    "sgd": dict(learning_rate=0.05),
    "momentum": dict(learning_rate=0.05, momentum=0.8),
    "nag": dict(learning_rate=0.05, momentum=0.8),
    "rmsprop": dict(learning_rate=0.01, beta=0.95, epsilon=1e-6),
    "adam": dict(learning_rate=0.01, beta1=0.85, beta2=0.99, epsilon=1e-6),
    "nadam": dict(learning_rate=0.01, beta1=0.85, beta2=0.99, epsilon=1e-6),
    "eve": dict(learning_rate=0.01, beta1=0.85, beta2=0.99, beta3=0.9, k=0.05, K=5.0, epsilon=1e-6),
}

# Minibatch losses for Eve: up and down, ties, and jumps clipped at both ends of [k, K].
LOSSES = [2.0, 1.5, 1.6, 1.6, 0.1, 30.0, 29.0, 35.0, 0.5, 0.45,
          0.6, 0.6, 3.0, 2.0, 1.0, 1.2, 0.01, 0.02, 5.0, 4.0]  # fmt: skip


# ----------------------------------------------------------------------------- helpers


def random_tree(rng: np.random.Generator, scale: float = 1.0) -> dict:
    tree: dict = {}
    for layer, name, shape in LEAVES:
        tree.setdefault(layer, {})[name] = scale * rng.standard_normal(shape)
    return tree


def leaves(tree: dict) -> list[np.ndarray]:
    return [tree[layer][name] for layer, name, _ in LEAVES]


def flat(tree: dict) -> np.ndarray:
    return np.concatenate([np.ravel(leaf) for leaf in leaves(tree)])


def problem(seed: int = 0) -> tuple[dict, list[dict]]:
    """Initial params and a fixed gradient sequence (independent of the params) of varying size."""
    rng = np.random.default_rng(seed)
    params = random_tree(rng)
    grads = [random_tree(rng, scale=rng.uniform(0.1, 3.0)) for _ in range(STEPS)]
    return params, grads


def run_fnn(opt: fnn.Optimizer, params: dict, grad_seq: list[dict], losses=None):
    state = opt.init(params)
    for step, grads in enumerate(grad_seq):
        loss = None if losses is None else losses[step]
        updates, state = opt.update(grads, state, params, loss=loss)
        params = fnn.apply_updates(params, updates)
    return params, state


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


# --- PyTorch references (torch.optim, float64, grads set by hand before each step)


def torch_optimizer(torch, name: str, tensors: list, hp: dict, weight_decay: float):
    lr = hp["learning_rate"]
    if name == "sgd":
        return torch.optim.SGD(tensors, lr=lr, weight_decay=weight_decay)
    if name in ("momentum", "nag"):
        return torch.optim.SGD(
            tensors, lr=lr, momentum=hp["momentum"], nesterov=name == "nag",
            weight_decay=weight_decay,
        )  # fmt: skip
    if name == "rmsprop":
        return torch.optim.RMSprop(
            tensors, lr=lr, alpha=hp["beta"], eps=hp["epsilon"], weight_decay=weight_decay
        )
    betas = (hp["beta1"], hp["beta2"])
    if name == "adam":
        return torch.optim.Adam(
            tensors, lr=lr, betas=betas, eps=hp["epsilon"], weight_decay=weight_decay
        )
    # momentum_decay -> infinity makes torch's mu_t = beta1 (1 - 0.96^(t psi) / 2) constant beta1.
    return torch.optim.NAdam(
        tensors, lr=lr, betas=betas, eps=hp["epsilon"], weight_decay=weight_decay,
        momentum_decay=1e9,
    )  # fmt: skip


def torch_max_diff(name: str, weight_decay: float) -> float:
    """Max |fnn - torch| over the params after STEPS float64 steps of the same gradients."""
    import torch

    params, grad_seq = problem()
    hp = HPARAMS[name]
    tensors = [torch.tensor(leaf, dtype=torch.float64) for leaf in leaves(params)]
    for tensor in tensors:
        tensor.requires_grad_(True)
    # torch keeps NAdam's running product of mu_t in a scalar of the *default* dtype, so with
    # float32 it drifts by ~1e-9 from a float64 computation.
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        opt = torch_optimizer(torch, name, tensors, hp, weight_decay)
        for grads in grad_seq:
            for tensor, grad in zip(tensors, leaves(grads), strict=True):
                tensor.grad = torch.tensor(grad, dtype=torch.float64)
            opt.step()
    finally:
        torch.set_default_dtype(default_dtype)
    expected = np.concatenate([t.detach().numpy().ravel() for t in tensors])

    ours, _ = run_fnn(get(name, **hp, weight_decay=weight_decay), params, grad_seq)
    assert all(leaf.dtype == np.float64 for leaf in leaves(ours))
    return max_abs_diff(flat(ours), expected)


# --- Paper transcriptions on one flat float64 array (coupled L2: g <- g + wd theta, as torch)


def nadam_paper(theta, grad_seq, learning_rate, beta1, beta2, epsilon, weight_decay=0.0):
    """Dozat (2016) Algorithm 2 with the constant schedule mu_t = beta1.

    g' = g / (1 - prod_{i<=t} mu_i);  m = beta1 m + (1 - beta1) g;
    m' = m / (1 - prod_{i<=t+1} mu_i);  n = beta2 n + (1 - beta2) g^2;  n' = n / (1 - beta2^t);
    m-bar = (1 - mu_t) g' + mu_{t+1} m';
    theta <- theta - lr m-bar / (sqrt(n') + eps)
    """

    def mu(t):
        return beta1

    theta = np.array(theta, dtype=np.float64)
    m = np.zeros_like(theta)
    n = np.zeros_like(theta)
    product = 1.0  # prod_{i <= t-1} mu_i
    for t, g in enumerate(grad_seq, start=1):
        g = g + weight_decay * theta
        product *= mu(t)
        g_prime = g / (1 - product)
        m = beta1 * m + (1 - beta1) * g
        m_prime = m / (1 - product * mu(t + 1))
        n = beta2 * n + (1 - beta2) * g * g
        n_prime = n / (1 - beta2**t)
        m_bar = (1 - mu(t)) * g_prime + mu(t + 1) * m_prime
        theta = theta - learning_rate * m_bar / (np.sqrt(n_prime) + epsilon)
    return theta


def eve_paper(theta, grad_seq, losses, learning_rate, beta1=0.9, beta2=0.999, beta3=0.999,
              k=0.1, K=10.0, epsilon=1e-8, weight_decay=0.0):  # noqa: N803  # fmt: skip
    """Koushik & Hayashi (2016) Algorithm 1, line by line. Returns (theta, [d_t], [f-hat_{t-1}])."""
    theta = np.array(theta, dtype=np.float64)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    d = 1.0
    f_hat = 0.0  # f-hat_{t-2} at the top of the loop
    d_history, f_hat_history = [], []
    for t, (g, f) in enumerate(zip(grad_seq, losses, strict=True), start=1):
        g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        m_hat = m / (1 - beta1**t)
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = v / (1 - beta2**t)
        if t > 1:
            if f >= f_hat:
                delta, Delta = k + 1, K + 1  # noqa: N806
            else:
                delta, Delta = 1 / (K + 1), 1 / (k + 1)  # noqa: N806
            c = min(max(delta, f / f_hat), Delta)
            new_f_hat = c * f_hat
            r = abs(new_f_hat - f_hat) / min(new_f_hat, f_hat)
            d = beta3 * d + (1 - beta3) * r
            f_hat = new_f_hat
        else:
            f_hat = f
            d = 1.0
        theta = theta - learning_rate * m_hat / (d * np.sqrt(v_hat) + epsilon)
        d_history.append(d)
        f_hat_history.append(f_hat)
    return theta, d_history, f_hat_history


def paper_max_diff(name: str, weight_decay: float) -> float:
    """Max |fnn - paper transcription| over the params after STEPS float64 steps."""
    params, grad_seq = problem(seed=1)
    hp = HPARAMS[name]
    flat_grads = [flat(grads) for grads in grad_seq]
    if name == "nadam":
        expected = nadam_paper(flat(params), flat_grads, **hp, weight_decay=weight_decay)
        losses = None
    else:
        losses = LOSSES
        expected, _, _ = eve_paper(
            flat(params), flat_grads, losses, **hp, weight_decay=weight_decay
        )
    ours, _ = run_fnn(get(name, **hp, weight_decay=weight_decay), params, grad_seq, losses)
    return max_abs_diff(flat(ours), expected)


# ----------------------------------------------------------------------------- first steps

# Hyperparameters chosen so that every term is visible (a large epsilon shows where it sits),
# the first update for an effective gradient g = +2 worked out by hand, and the closed form of
# the first update for any g (m_1 = (1 - beta1) g, v_1 = (1 - beta2) g^2, d_1 = 1).
FIRST_STEPS = [
    # -lr g
    ("sgd", dict(learning_rate=0.1), -0.2, lambda g: -0.1 * g),
    # b_1 = g, so -lr g
    ("momentum", dict(learning_rate=0.1, momentum=0.8), -0.2, lambda g: -0.1 * g),
    # -lr (g + mu b_1) = -lr (1 + mu) g = -0.1 * 1.8 * 2
    ("nag", dict(learning_rate=0.1, momentum=0.8), -0.36, lambda g: -0.18 * g),
    # v_1 = 0.04 * 4 = 0.16; -0.1 * 2 / (0.4 + 0.1)
    ("rmsprop", dict(learning_rate=0.1, beta=0.96, epsilon=0.1), -0.4,
     lambda g: -0.1 * g / (0.2 * np.abs(g) + 0.1)),
    # m-hat = g, sqrt(v-hat) = |g|; -0.1 * 2 / (2 + 0.5)
    ("adam", dict(learning_rate=0.1, beta1=0.8, beta2=0.99, epsilon=0.5), -0.08,
     lambda g: -0.1 * g / (np.abs(g) + 0.5)),
    # m-hat = b1 (1 - b1) g / (1 - b1^2) + g = g (1 + 2 b1) / (1 + b1) = 4/3 g at b1 = 0.5;
    # -0.1 * (8/3) / 2.5 = -8/75
    ("nadam", dict(learning_rate=0.1, beta1=0.5, beta2=0.99, epsilon=0.5), -8 / 75,
     lambda g: -0.1 * (4 / 3) * g / (np.abs(g) + 0.5)),
    # d_1 = 1, so Adam's first step
    ("eve", dict(learning_rate=0.1, beta1=0.8, beta2=0.99, epsilon=0.5), -0.08,
     lambda g: -0.1 * g / (np.abs(g) + 0.5)),
]  # fmt: skip
FIRST_STEP_IDS = [case[0] for case in FIRST_STEPS]


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize(
    ("name", "hp", "update_for_two", "closed_form"), FIRST_STEPS, ids=FIRST_STEP_IDS
)
def test_first_step_by_hand(name, hp, update_for_two, closed_form, weight_decay):
    # Every effective gradient g + wd * theta is +-2: with wd = 0.1 and theta = +-5, g = +-1.5.
    sign = {"layer_0": {"w": np.array([[1.0, -1.0]]), "b": np.array([-1.0])},
            "layer_1": {"w": np.array([[1.0], [-1.0]]), "b": np.array([1.0])}}  # fmt: skip
    params = fnn.tree_map(lambda s: 5.0 * s, sign)
    grads = fnn.tree_map(lambda s: (2.0 - 5.0 * weight_decay) * s, sign)
    opt = get(name, **hp, weight_decay=weight_decay)
    updates, _ = opt.update(grads, opt.init(params), params, loss=1.0)
    for layer in sign:
        for leaf in sign[layer]:
            np.testing.assert_allclose(
                updates[layer][leaf], update_for_two * sign[layer][leaf], rtol=1e-12
            )


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize(
    ("name", "hp", "update_for_two", "closed_form"), FIRST_STEPS, ids=FIRST_STEP_IDS
)
def test_first_step_closed_form(name, hp, update_for_two, closed_form, weight_decay):
    rng = np.random.default_rng(2)
    params = random_tree(rng)
    grads = random_tree(rng, scale=3.0)
    opt = get(name, **hp, weight_decay=weight_decay)
    updates, _ = opt.update(grads, opt.init(params), params, loss=1.0)
    for layer, leaf, _shape in LEAVES:
        effective = grads[layer][leaf] + weight_decay * params[layer][leaf]
        np.testing.assert_allclose(updates[layer][leaf], closed_form(effective), rtol=1e-12)


def test_eve_first_state():
    params = {"layer_0": {"w": np.ones((2, 2))}}
    opt = fnn.optimizers.eve(0.1)
    _, state = opt.update(params, opt.init(params), params, loss=3.5)
    assert isinstance(state, EveState)
    assert (state.count, state.feedback, state.smoothed_loss) == (1, 1.0, 3.5)


# ----------------------------------------------------------------------------- vs PyTorch


@pytest.mark.parametrize("weight_decay", WEIGHT_DECAYS)
@pytest.mark.parametrize("name", ["sgd", "momentum", "nag", "rmsprop", "adam", "nadam"])
def test_matches_torch(name, weight_decay):
    pytest.importorskip("torch")
    assert torch_max_diff(name, weight_decay) <= TOLERANCE


def test_torch_nadam_default_schedule_differs():
    """The comparison above depends on momentum_decay=1e9; torch's default schedule is another
    algorithm, so a test that could not tell the two apart would be worthless."""
    torch = pytest.importorskip("torch")
    params, grad_seq = problem()
    hp = HPARAMS["nadam"]
    tensors = [
        torch.tensor(leaf, dtype=torch.float64, requires_grad=True) for leaf in leaves(params)
    ]
    opt = torch.optim.NAdam(tensors, lr=hp["learning_rate"], betas=(hp["beta1"], hp["beta2"]),
                            eps=hp["epsilon"])  # fmt: skip
    for grads in grad_seq:
        for tensor, grad in zip(tensors, leaves(grads), strict=True):
            tensor.grad = torch.tensor(grad, dtype=torch.float64)
        opt.step()
    expected = np.concatenate([t.detach().numpy().ravel() for t in tensors])
    ours, _ = run_fnn(get("nadam", **hp), params, grad_seq)
    assert max_abs_diff(flat(ours), expected) > 1e-3


# ----------------------------------------------------------------------------- vs the papers


@pytest.mark.parametrize("weight_decay", WEIGHT_DECAYS)
@pytest.mark.parametrize("name", ["nadam", "eve"])
def test_matches_paper(name, weight_decay):
    assert paper_max_diff(name, weight_decay) <= TOLERANCE


def test_eve_paper_run_exercises_feedback():
    """The Eve comparison only means something if d_t moves away from 1 and hits both clips."""
    params, grad_seq = problem(seed=1)
    hp = HPARAMS["eve"]
    _, d_history, f_hat_history = eve_paper(flat(params), [flat(g) for g in grad_seq], LOSSES, **hp)
    ratios = [new / old for old, new in itertools.pairwise(f_hat_history)]
    assert any(math.isclose(r, hp["K"] + 1) for r in ratios)
    assert any(math.isclose(r, 1 / (hp["K"] + 1)) for r in ratios)
    assert max(d_history) > 2 and min(d_history) < 0.8


def feedback_trace(losses: list[float], beta3: float) -> tuple[list[float], list[float]]:
    """fnn's (d_t, f-hat_{t-1}) for each loss, with k = 0.1, K = 10 (grads play no part)."""
    params = {"layer_0": {"w": np.zeros((2, 2))}}
    opt = fnn.optimizers.eve(1e-3, beta3=beta3, k=0.1, K=10.0)
    state = opt.init(params)
    d_history, f_hat_history = [], []
    for loss in losses:
        _, state = opt.update(params, state, params, loss=loss)
        d_history.append(state.feedback)
        f_hat_history.append(state.smoothed_loss)
    return d_history, f_hat_history


# REFERENCE.md section 2, test vectors computed from Algorithm 1 with k = 0.1, K = 10.
VECTOR_LOSSES = [2.0, 1.5, 1.6, 1.6, 0.1, 30.0, 29.0]
VECTOR_F_HAT = [2, 1.5, 1.65, 1.5, 0.1363636364, 1.5, 16.5]
FEEDBACK_VECTORS = [
    (VECTOR_LOSSES, 0.5,
     [1, 0.666666666667, 0.383333333333, 0.241666666667, 5.12083333333, 7.56041666667,
      8.78020833333], VECTOR_F_HAT),
    (VECTOR_LOSSES, 0.999,
     [1, 0.999333333333, 0.998434, 0.997535566, 1.00653803043, 1.0155314924, 1.02451596091],
     VECTOR_F_HAT),
    ([1.0, 1.0, 1.0], 0.5, [1, 0.55, 0.325], [1, 1.1, 1.0]),  # ties: f >= f-hat counts as up
]  # fmt: skip


@pytest.mark.parametrize("implementation", ["fnn", "paper"])
@pytest.mark.parametrize(("losses", "beta3", "d", "f_hat"), FEEDBACK_VECTORS)
def test_eve_feedback_vectors(losses, beta3, d, f_hat, implementation):
    if implementation == "fnn":
        d_history, f_hat_history = feedback_trace(losses, beta3)
    else:  # the transcription used above must reproduce the vectors too
        zeros = [np.zeros(1)] * len(losses)
        _, d_history, f_hat_history = eve_paper(np.zeros(1), zeros, losses, 1e-3, beta3=beta3)
    np.testing.assert_allclose(d_history, d, rtol=1e-10)
    np.testing.assert_allclose(f_hat_history, f_hat, rtol=1e-9)


@pytest.mark.parametrize("loss", [None, 0.0, -1.0, math.nan, math.inf, -math.inf])
def test_eve_rejects_missing_or_bad_loss(loss):
    params = {"layer_0": {"w": np.ones(2)}}
    opt = fnn.optimizers.eve(1e-3)
    state = opt.init(params)
    if loss is not None:  # also after the first step, when the loss is divided by f-hat
        _, state = opt.update(params, state, params, loss=1.0)
    with pytest.raises(ValueError, match="loss"):
        opt.update(params, state, params, loss=loss)


# ----------------------------------------------------------------------------- dtypes, purity


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(name, weight_decay):
    params, grad_seq = problem()
    params = fnn.tree_map(lambda x: x.astype(np.float32), params)
    opt = get(name, **HPARAMS[name], weight_decay=weight_decay)
    state = opt.init(params)
    for step, grads in enumerate(grad_seq[:5]):
        grads = fnn.tree_map(lambda x: x.astype(np.float32), grads)
        updates, state = opt.update(grads, state, params, loss=LOSSES[step])
        params = fnn.apply_updates(params, updates)
        assert all(u.dtype == np.float32 for u in leaves(updates))
        assert all(p.dtype == np.float32 for p in leaves(params))
        assert all(
            leaf.dtype == np.float32
            for leaf in fnn.tree_leaves(state)
            if isinstance(leaf, np.ndarray)
        )


@pytest.mark.parametrize("name", NAMES)
def test_update_never_mutates_grads_or_params(name):
    # The contract (fnn/optimizers.py): the caller's grads, params and state are never written,
    # and the updates and the new state are new arrays.
    params, grad_seq = problem()
    opt = get(name, **HPARAMS[name], weight_decay=0.01)
    state = opt.init(params)
    _, state = opt.update(grad_seq[0], state, params, loss=LOSSES[0])  # non-trivial state
    before = copy.deepcopy((grad_seq[1], params, state))
    updates, new_state = opt.update(grad_seq[1], state, params, loss=LOSSES[1])
    assert_same_tree((grad_seq[1], params, state), before)
    fnn.apply_updates(params, updates)
    assert_same_tree(params, before[1])
    callers = [*fnn.tree_leaves((grad_seq[1], params, state)), *fnn.tree_leaves(new_state)]
    for update in fnn.tree_leaves(updates):
        assert not any(
            np.shares_memory(update, other) for other in callers if isinstance(other, np.ndarray)
        )


def test_continuing_from_returned_states_matches_a_fresh_run():
    params, grad_seq = problem()
    opt = get("adam", **HPARAMS["adam"])
    first, _ = run_fnn(opt, params, grad_seq[:6], LOSSES[:6])
    again, _ = run_fnn(opt, params, grad_seq[:6], LOSSES[:6])
    np.testing.assert_array_equal(flat(first), flat(again))


# ----------------------------------------------------------------------------- registry


def one_step(opt: fnn.Optimizer, steps: int = 2) -> np.ndarray:
    params, grad_seq = problem()
    ours, _ = run_fnn(opt, params, grad_seq[:steps], LOSSES[:steps])
    return flat(ours)


@pytest.mark.parametrize("spelling", ["Adam", "ADAM", "adam"])
def test_get_is_case_insensitive(spelling):
    hp = HPARAMS["adam"]
    np.testing.assert_array_equal(
        one_step(get(spelling, **hp)), one_step(fnn.optimizers.adam(**hp))
    )


def test_get_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="adamw") as info:
        get("adamw", learning_rate=0.1)
    assert all(name in str(info.value) for name in NAMES)


def test_get_unknown_hyperparameter():
    with pytest.raises(ValueError, match="lr"):
        get("adam", learning_rate=0.1, lr=0.1)


def test_get_rejects_hyperparameters_the_optimizer_does_not_take():
    # Silently dropping momentum would turn "sgd with momentum" into plain SGD.
    with pytest.raises(ValueError, match="sgd does not take momentum"):
        get("sgd", momentum=0.9, learning_rate=0.1)
    assert fnn.optimizers.hyperparameters("sgd") == ["learning_rate", "weight_decay"]


def test_numpy_scalar_hyperparameters_keep_float32():
    params = {"w": np.ones(3, dtype=np.float32)}
    for name in NAMES:
        opt = get(name, learning_rate=np.float64(1e-3), weight_decay=np.float32(1e-4))
        updates, state = opt.update(params, opt.init(params), params, loss=1.0)
        assert updates["w"].dtype == np.float32, name
        assert all(
            leaf.dtype == np.float32
            for leaf in fnn.tree_leaves(state)
            if isinstance(leaf, np.ndarray)
        ), name


BAD_HYPERPARAMETERS = [
    *[(name, "learning_rate", value) for name in NAMES for value in (0.0, -0.1)],
    *[(name, "weight_decay", -0.01) for name in NAMES],
    *[(name, "momentum", value) for name in ("momentum", "nag") for value in (1.0, 1.5, -0.1)],
    ("rmsprop", "beta", 1.0),
    *[
        (name, "epsilon", value)
        for name in ("rmsprop", "adam", "nadam", "eve")
        for value in (0, -1)
    ],
    *[(name, "beta1", 1.0) for name in ("adam", "nadam", "eve")],
    *[(name, "beta2", 1.0) for name in ("adam", "nadam", "eve")],
    ("eve", "beta3", 1.0),
    ("eve", "k", 0.0),
    ("eve", "K", 0.1),  # K must exceed k
]


@pytest.mark.parametrize(("name", "hparam", "value"), BAD_HYPERPARAMETERS)
def test_out_of_range_hyperparameters(name, hparam, value):
    hp = {"learning_rate": 0.1, hparam: value}
    with pytest.raises(ValueError, match=rf"^{hparam} must"):
        get(name, **hp)
    with pytest.raises(ValueError, match=rf"^{hparam} must"):
        fnn.optimizers.OPTIMIZERS[name](**hp)


@pytest.mark.parametrize("name", NAMES)
def test_boundary_values_are_accepted(name):
    # weight_decay = 0 and momentum = 0 are valid; a zero beta is a valid (memoryless) average.
    hp = dict(HPARAMS[name], weight_decay=0.0)
    for key in ("momentum", "beta", "beta1"):
        if key in hp:
            hp[key] = 0.0
    assert np.all(np.isfinite(one_step(get(name, **hp))))


def test_chain_of_clipping_and_adam_on_a_cosine_schedule_matches_optax_for_200_steps():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    from fnn.optimizers import adam, chain, clip_by_global_norm, cosine_decay_schedule

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 6)), rng.integers(0, 3, 32)
    ours = fnn.init_mlp([6, 5, 3], dtype=np.float64)
    opt = chain(clip_by_global_norm(1.0), adam(cosine_decay_schedule(1e-2, 200)))
    state, clipped = opt.init(ours), 0
    with jax.enable_x64(True):
        reference = optax.chain(
            optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(1e-2, 200))
        )
        theirs = fnn.tree_map(jax.numpy.asarray, ours)
        reference_state = reference.init(theirs)
        for _ in range(200):
            loss, g = fnn.grads(ours, x, y)
            g = fnn.tree_scale(g, 20.0)  # large enough that the clipping acts
            clipped += fnn.global_norm(g) > 1.0
            updates, state = opt.update(g, state, ours, loss=loss)
            ours = fnn.apply_updates(ours, updates)
            _, h = fnn.grads(fnn.tree_map(np.asarray, theirs), x, y)
            h = fnn.tree_map(jax.numpy.asarray, fnn.tree_scale(h, 20.0))
            steps, reference_state = reference.update(h, reference_state, theirs)
            theirs = optax.apply_updates(theirs, steps)
    assert clipped > 100
    theirs = fnn.tree_map(np.asarray, theirs)
    assert fnn.tree_allclose(ours, theirs, rtol=1e-6, atol=1e-9)
    assert not fnn.tree_allclose(ours, fnn.init_mlp([6, 5, 3], dtype=np.float64), rtol=1e-3)


def test_a_learning_rate_schedule_is_a_chain_with_the_step_count():
    params = fnn.init_mlp([3, 2], dtype=np.float64)
    x, y = np.ones((2, 3)), np.array([0, 1])
    seen = []
    opt = fnn.optimizers.sgd(lambda count: seen.append(count) or 0.1 / (count + 1))
    state = opt.init(params)
    loss, g = fnn.grads(params, x, y)
    first, state = opt.update(g, state, params, loss=loss)
    second, state = opt.update(g, state, params, loss=loss)
    assert seen == [0, 1] and state[1].count == 2
    np.testing.assert_allclose(fnn.ravel(first)[0], -0.1 * fnn.ravel(g)[0])
    np.testing.assert_allclose(fnn.ravel(second)[0], -0.05 * fnn.ravel(g)[0])


def test_eve_gets_the_loss_through_a_chain():
    from fnn.optimizers import chain, clip_by_global_norm

    params = fnn.init_mlp([3, 2], dtype=np.float64)
    x, y = np.ones((2, 3)), np.array([0, 1])
    opt = chain(clip_by_global_norm(10.0), fnn.optimizers.eve(0.01))
    state = opt.init(params)
    for loss in (2.0, 1.0):
        _, g = fnn.grads(params, x, y)
        _, state = opt.update(g, state, params, loss=loss)
    assert state[1].smoothed_loss != 0.0 and state[1].count == 2
    with pytest.raises(fnn.optimizers.LossError):
        opt.update(g, state, params)


def test_clipping_takes_only_its_own_state():
    from fnn.optimizers import clip_by_global_norm

    params = fnn.init_mlp([3, 2], dtype=np.float64)
    clip = clip_by_global_norm(1.0)
    with pytest.raises(ValueError, match="EmptyState that clip_by_global_norm's init gave"):
        clip.update(params, fnn.optimizers.adam(0.1).init(params), params)
