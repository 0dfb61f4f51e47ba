"""The core's contract, as properties (hypothesis): every public function leaves its arguments
exactly as they were, gives bit-identical results when called again with the same arguments,
and treats a deep copy of a state exactly like the original; donation is the explicit opt-in
to reuse memory, and reusing a donated tree raises instead of computing wrong numbers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import assert_same_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnn
from fnn.train import TrainingDiverged, scale_updates, train_step
from fnn.tree import DonatedError, flatten

NAMES = list(fnn.optimizers.OPTIMIZERS)
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def snapshot(tree):
    return copy.deepcopy(tree)


@st.composite
def problems(draw):
    """An MLP, a batch, and a short history of optimizer steps to start from."""
    sizes = [draw(st.integers(1, 6)) for _ in range(draw(st.integers(2, 4)))]
    sizes[-1] = max(sizes[-1], 2)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**16))
    batch = draw(st.integers(1, 5))
    rng = np.random.default_rng(seed)
    params = fnn.init_mlp(sizes, seed=seed, dtype=dtype)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], batch)
    warmup = draw(st.integers(0, 3))
    activation = draw(st.sampled_from(["tanh", "relu", "sigmoid", "identity"]))
    return params, x, y, warmup, activation


def make(name: str):
    hparams = {"learning_rate": 0.05}
    if name in ("adam", "nadam", "eve", "rmsprop"):
        hparams["learning_rate"] = 0.01
    return fnn.optimizers.get(name, **hparams, weight_decay=0.01)


def warmed(opt, params, x, y, steps, activation):
    """(params, state) after ``steps`` public-loop steps, so states hold non-zero moments."""
    state = opt.init(params)
    for _ in range(steps):
        loss, g = fnn.grads(params, x, y, activation=activation)
        updates, state = opt.update(g, state, params, loss=loss)
        params = fnn.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(problem=problems())
def test_update_is_pure(name, problem):
    params, x, y, warmup, activation = problem
    opt = make(name)
    params, state = warmed(opt, params, x, y, warmup, activation)
    loss, g = fnn.grads(params, x, y, activation=activation)
    before = snapshot((g, state, params))
    first = opt.update(g, state, params, loss=loss)
    assert_same_tree((g, state, params), before)  # nothing written
    assert_same_tree(opt.update(g, state, params, loss=loss), first)  # same arguments, same result
    twin = copy.deepcopy(state)
    assert_same_tree(opt.update(g, twin, params, loss=loss), first)  # a deep copy behaves the same
    # the state stays valid after use: continuing twice from it gives the same trajectory
    updates, new_state = first
    assert_same_tree(
        opt.update(g, new_state, params, loss=loss), opt.update(g, new_state, params, loss=loss)
    )


@PROPERTY
@given(problem=problems(), dropout=st.sampled_from([0.0, 0.3]))
def test_grads_forward_and_loss_value_are_pure(problem, dropout):
    params, x, y, _, activation = problem
    before = snapshot((params, x, y))
    rng_state = np.random.default_rng(7).bit_generator.state
    results = []
    for _ in range(2):
        rng = np.random.default_rng(7)
        assert rng.bit_generator.state == rng_state
        results.append(fnn.grads(params, x, y, activation=activation, dropout=dropout, rng=rng))
    assert_same_tree(results[0], results[1])
    assert_same_tree(
        fnn.forward(params, x, activation=activation), fnn.forward(params, x, activation=activation)
    )
    assert fnn.loss_value(params, x, y, activation=activation) == fnn.loss_value(
        copy.deepcopy(params), x, y, activation=activation
    )
    assert_same_tree((params, x, y), before)


@PROPERTY
@given(problem=problems(), factor=st.floats(0.1, 2.0))
def test_apply_updates_and_scaling_are_pure(problem, factor):
    params, x, y, _, activation = problem
    _, g = fnn.grads(params, x, y, activation=activation)
    before = snapshot((params, g))
    new = fnn.apply_updates(params, g)
    assert_same_tree((params, g), before)
    assert_same_tree(fnn.apply_updates(params, g), new)
    scaled = scale_updates(g, factor)
    assert_same_tree(g, before[1])
    assert_same_tree(scale_updates(g, factor), scaled)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(problem=problems(), lr_scale=st.sampled_from([1.0, 0.5]))
def test_train_step_is_pure_and_donation_gives_the_same_numbers(name, problem, lr_scale):
    params, x, y, warmup, activation = problem
    opt = make(name)
    params, state = warmed(opt, params, x, y, warmup, activation)
    before = snapshot((params, state))
    step = train_step(opt, activation=activation, loss="cross_entropy")
    first = step(params, state, x, y, lr_scale=lr_scale)
    assert_same_tree((params, state), before)
    assert_same_tree(step(params, state, x, y, lr_scale=lr_scale), first)
    twins = copy.deepcopy((params, state))
    assert_same_tree(step(*twins, x, y, lr_scale=lr_scale), first)
    # the donating step computes the same numbers, in the memory of what it was given
    donating = train_step(opt, activation=activation, loss="cross_entropy", donate=True)
    assert_same_tree(donating(params, state, x, y, lr_scale=lr_scale), first)


def test_the_same_state_can_be_branched_and_replayed():
    params = fnn.init_mlp([4, 5, 3], seed=1)
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    opt = fnn.optimizers.adam(1e-2)
    state = opt.init(params)
    loss, g = fnn.grads(params, x, y)
    a, _ = opt.update(g, state, params)
    b, _ = opt.update(g, state, params)
    assert_same_tree(a, b)
    assert not np.any(flatten(state.first_moment)[0])  # init's zeros stay zeros


def test_reusing_a_donated_tree_raises():
    params = fnn.init_mlp([4, 5, 3], seed=1)
    x = np.ones((2, 4), np.float32)
    y = np.array([0, 2])
    opt = fnn.optimizers.adam(1e-2)
    state = opt.init(params)
    step = train_step(opt, activation="tanh", loss="cross_entropy", donate=True)
    new_params, new_state, _ = step(params, state, x, y)
    with pytest.raises(DonatedError, match="donated"):
        fnn.forward(params, x)
    with pytest.raises(DonatedError, match="donated"):
        step(params, new_state, x, y)
    with pytest.raises(DonatedError, match="donated"):
        opt.update(fnn.grads(new_params, x, y)[1], state, new_params)
    step(new_params, new_state, x, y)  # continuing from what the step returned works


def test_core_keeps_no_hidden_module_level_state():
    # The only module-level containers of the core are its name registries (constant tables);
    # no cache or registry of arrays, and no memoised function, can make a result depend on
    # what ran before.
    import fnn.activations
    import fnn.init
    import fnn.losses
    import fnn.model
    import fnn.tree

    registries = {"ACTIVATIONS", "LOSSES", "INITIALISERS", "OPTIMIZERS"}
    for module in (fnn.tree, fnn.model, fnn.optimizers, fnn.activations, fnn.losses, fnn.init):
        for name, value in vars(module).items():
            if isinstance(value, dict | set | list) and not name.startswith("__"):
                assert name in registries, f"{module.__name__}.{name}"
            assert not hasattr(value, "cache_info"), f"{module.__name__}.{name} is memoised"


@pytest.mark.parametrize("name", NAMES)
def test_every_optimizer_rejects_grads_unlike_its_state(name):
    params = fnn.init_mlp([3, 4, 2], dtype=np.float64)
    opt = make(name)
    state = opt.init(params)
    good = fnn.tree_map(np.ones_like, params)
    renamed = {**good, "layer_0": {"w": good["layer_0"]["w"], "bias": good["layer_0"]["b"]}}
    missing = {"layer_0": good["layer_0"]}
    extra = {**good, "layer_2": good["layer_1"]}
    shape = {**good, "layer_1": {"w": np.ones((4, 3)), "b": good["layer_1"]["b"]}}
    cases = [(renamed, "at layer_0"), (missing, "at the root"), (extra, "at the root"),
             (shape, r"at layer_1/w: shape \(4, 3\)")]  # fmt: skip
    for grads, where in cases:
        with pytest.raises(ValueError, match=f"grads differ from the optimizer state {where}"):
            opt.update(grads, state, params, loss=1.0)


def test_renamed_key_message_says_which_tree_has_which():
    params = fnn.init_mlp([3, 2], dtype=np.float64)
    opt = fnn.optimizers.momentum(0.1)
    state = opt.init(params)
    grads = {"layer_0": {"w": np.ones((3, 2)), "bias": np.ones(2)}}
    with pytest.raises(ValueError) as error:
        opt.update(grads, state, params)
    message = str(error.value)
    assert (
        "grads differ from the optimizer state at layer_0: a dict with keys ['bias', 'w']"
        in message
    )
    assert "where it should have a dict with keys ['b', 'w']" in message


def test_non_finite_gradient_stops_the_step_before_any_update():
    params = fnn.init_mlp([3, 4, 2])
    opt = fnn.optimizers.adam(1e-2)
    state = opt.init(params)
    x = np.array([[np.inf, 0.0, 1.0]], np.float32)
    loss, g = fnn.grads(params, x, np.array([1]))
    assert np.isfinite(loss) and not np.all(np.isfinite(flatten(g)[0]))
    for donate in (False, True):
        step = train_step(opt, activation="tanh", loss="cross_entropy", donate=donate)
        with pytest.raises(TrainingDiverged, match="gradient is not finite"):
            step(params, state, x, np.array([1]))
        assert np.all(np.isfinite(flatten(params)[0]))  # the last good params, untouched
