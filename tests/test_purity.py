"""The core's contract, as properties (hypothesis): every public function leaves its arguments
exactly as they were, gives bit-identical results when called again with the same arguments,
and treats a deep copy of a state exactly like the original; nothing fnn hands out (params,
states, updates, what ``fit`` gives a callback) is written afterwards; importing fnn changes
nothing in the process."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_same_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fnn
from fnn.train import TrainingDiverged, train_step
from fnn.tree import ravel

# every test here runs on both paths of the updates (NumPy, and numba's fused loops)
pytestmark = pytest.mark.usefixtures("update_path")

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


def make(name: str, scheduled: bool = False):
    learning_rate = 0.01 if name in ("adam", "nadam", "eve", "rmsprop") else 0.05
    if scheduled:
        learning_rate = fnn.optimizers.cosine_decay_schedule(learning_rate, 10)
    return fnn.optimizers.get(name, learning_rate=learning_rate, weight_decay=0.01)


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


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(problem=problems())
def test_step_is_pure(name, problem):
    params, x, y, warmup, activation = problem
    opt = make(name)
    params, state = warmed(opt, params, x, y, warmup, activation)
    loss, g = fnn.grads(params, x, y, activation=activation)
    before = snapshot((g, state, params))
    first = opt.step(g, state, params, loss=loss)
    assert_same_tree((g, state, params), before)  # nothing written
    assert_same_tree(opt.step(g, state, params, loss=loss), first)
    assert_same_tree(opt.step(g, copy.deepcopy(state), copy.deepcopy(params), loss=loss), first)
    new_params, new_state = first
    kept = snapshot(first)
    opt.step(g, new_state, new_params, loss=loss)  # stepping on from a result leaves it alone
    assert_same_tree(first, kept)


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
@given(problem=problems())
def test_apply_updates_is_pure(problem):
    params, x, y, _, activation = problem
    _, g = fnn.grads(params, x, y, activation=activation)
    before = snapshot((params, g))
    new = fnn.apply_updates(params, g)
    assert_same_tree((params, g), before)
    assert_same_tree(fnn.apply_updates(params, g), new)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(problem=problems(), scheduled=st.booleans())
def test_train_step_is_pure(name, problem, scheduled):
    params, x, y, warmup, activation = problem
    opt = make(name, scheduled)  # with a schedule, the state is a chain's tuple
    params, state = warmed(opt, params, x, y, warmup, activation)
    before = snapshot((params, state))
    step = train_step(opt, activation=activation, loss="cross_entropy")
    first = step(params, state, x, y)
    assert_same_tree((params, state), before)
    assert_same_tree(step(params, state, x, y), first)
    twins = copy.deepcopy((params, state))
    assert_same_tree(step(*twins, x, y), first)


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
    assert not np.any(state.first_moment)  # init's zeros stay zeros


def test_a_leaf_kept_from_params_never_changes():
    params = fnn.init_mlp([4, 5, 3], seed=1)
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    opt = fnn.optimizers.adam(1e-2)
    step = train_step(opt, activation="tanh", loss="cross_entropy")
    kept = params["layer_0"]["w"]
    value = kept.copy()
    state, new = opt.init(params), params
    for _ in range(3):
        new, state, _ = step(new, state, x, y)
    assert np.array_equal(kept, value)
    assert not np.array_equal(new["layer_0"]["w"], value)  # training did move the weights
    loss, g = fnn.grads(new, x, y)
    kept_grad, kept_moment = g["layer_1"]["b"], state.first_moment
    grad_value, moment_value = kept_grad.copy(), kept_moment.copy()
    updates, later = opt.update(g, state, new, loss=loss)
    fnn.apply_updates(new, updates)
    opt.update(g, later, new, loss=loss)
    assert np.array_equal(kept_grad, grad_value) and np.array_equal(kept_moment, moment_value)


def test_fit_never_writes_the_params_it_gave_a_callback():
    from fnn.data import Splits
    from fnn.train import TrainConfig, fit

    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 6)).astype(np.float32)
    y = rng.integers(0, 3, 96)
    splits = Splits(x[:64], y[:64], x[64:], y[64:], x[64:], y[64:])
    kept = []

    def on_checkpoint(model, state, arrays):
        leaves = fnn.tree.tree_leaves_with_path(model)
        kept.append((model, {key: leaf.copy() for key, leaf in leaves}))

    config = TrainConfig(epochs=4, batch_size=8, hidden_size=5, num_layers=1, optimizer="adam",
                         learning_rate=0.01)  # fmt: skip
    fit(config, splits, on_checkpoint=on_checkpoint)
    assert len(kept) == 4
    for model, values in kept:  # what each epoch handed out is as it was then
        for key, leaf in fnn.tree.tree_leaves_with_path(model):
            assert np.array_equal(leaf, values[key]), key
    for (earlier, _), (later, _) in zip(kept, kept[1:], strict=False):  # and each epoch's differ
        assert not np.array_equal(earlier["layer_0"]["w"], later["layer_0"]["w"])


def test_importing_fnn_leaves_the_allocator_alone(tmp_path, update_path):
    # (The fused path loads numba's compiler through ctypes: no allocator function either.)
    # Every C function reached through ctypes is looked up by name on a CDLL: record them.
    spy = """
import ctypes
looked_up = []
class Spy(ctypes.CDLL):
    def __getattr__(self, name):
        looked_up.append(name)
        return super().__getattr__(name)
    def __getitem__(self, name):
        looked_up.append(name)
        return super().__getitem__(name)
ctypes.CDLL = Spy
import numpy as np
import fnn
params = fnn.init_mlp([3, 2])
opt = fnn.optimizers.adam(0.1)
loss, g = fnn.grads(params, np.ones((2, 3), np.float32), np.array([0, 1]))
updates, state = opt.update(g, opt.init(params), params)
fnn.apply_updates(params, updates)
print(looked_up)
"""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", spy], capture_output=True, text=True,
                          cwd=tmp_path, check=True)  # fmt: skip
    assert "mallopt" not in done.stdout and "malloc_trim" not in done.stdout, done.stdout
    if update_path == "numpy":
        assert done.stdout.strip() == "[]", done.stdout  # no C function at all


def test_core_keeps_no_hidden_module_level_state():
    # The only module-level containers of the core are its name registries (constant tables);
    # no cache or registry of arrays can make a result depend on what ran before. The only
    # memoised functions map hashable descriptions to immutable ones (sorted keys, layouts).
    import fnn.activations
    import fnn.fused
    import fnn.init
    import fnn.losses
    import fnn.model
    import fnn.passes
    import fnn.rules
    import fnn.tree

    # ... and fnn.fused's functions marked @compilable, those numba was told about, and each
    # loop's compiled code (a memo of a function, as below)
    registries = {"ACTIVATIONS", "LOSSES", "INITIALISERS", "OPTIMIZERS", "_COMPILABLE",
                  "_REGISTERED", "_COMPILED"}  # fmt: skip
    modules = (fnn.tree, fnn.model, fnn.optimizers, fnn.activations, fnn.losses, fnn.init,
               fnn.fused, fnn.passes, fnn.rules)  # fmt: skip
    for module in modules:
        for name, value in vars(module).items():
            if isinstance(value, dict | set | list) and not name.startswith("__"):
                assert name in registries, f"{module.__name__}.{name}"
            if hasattr(value, "cache_info"):
                assert f"{module.__name__}.{name}" in MEMOISED, f"{module.__name__}.{name}"


# (and a rule's recorded passes, an immutable description of its equations)
MEMOISED = {"fnn.tree._sorted", "fnn.tree._layout", "fnn.model._mlp_layout",
            "fnn.passes.record"}  # fmt: skip


def test_memoised_descriptions_are_immutable_and_the_same_without_the_memo():
    import fnn.model
    import fnn.tree

    params = fnn.init_mlp([3, 4, 2])
    flat, layout = ravel(params)
    assert isinstance(layout, tuple) and hash(layout) == hash(fnn.tree._layout.__wrapped__(
        layout.treedef, layout.shapes, layout.dtypes))  # fmt: skip
    assert layout == fnn.model._mlp_layout.__wrapped__(((3, 4), (4, 2)), np.dtype(np.float32))
    assert fnn.tree._sorted.__wrapped__(("layer_10", "layer_2")) == ("layer_2", "layer_10")


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
    assert np.isfinite(loss) and not np.all(np.isfinite(ravel(g)[0]))
    step = train_step(opt, activation="tanh", loss="cross_entropy")
    before = copy.deepcopy(params)
    with pytest.raises(TrainingDiverged, match="gradient is not finite"):
        step(params, state, x, np.array([1]))
    assert_same_tree(params, before)  # the last good params, untouched


def fnn_functions_run_by(call) -> set[str]:
    """The distinct fnn functions (module:name) that ``call()`` runs, seen by ``sys.setprofile``
    (comprehensions and generator expressions count as functions of their own)."""
    import sys

    seen: set[str] = set()
    package = str(Path(fnn.__file__).parent)

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(package):
            seen.add(f"{Path(frame.f_code.co_filename).stem}:{frame.f_code.co_name}")

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return seen


def test_an_update_is_a_few_hops_from_the_arrays(update_path):
    params = fnn.init_mlp([784, 128, 128, 128, 10])
    x = np.random.default_rng(0).standard_normal((16, 784)).astype(np.float32)
    opt = fnn.optimizers.adam(1e-3)
    state = opt.init(params)
    loss, g = fnn.grads(params, x, np.arange(16) % 10)
    updates, state = opt.update(g, state, params, loss=loss)
    path = {"numpy": {"passes:run"}, "fused": {"rules:adam_loop"}}[update_path]  # compiled
    common = {"optimizers:run", "tree:ravel", "tree:_flatten", "optimizers:coefficients", *path,
              "tree:unravel", "tree:_build"}  # fmt: skip
    update = fnn_functions_run_by(lambda: opt.update(g, state, params, loss=loss))
    assert update == {"optimizers:update", *common}, update
    assert len(update) <= 8
    apply = fnn_functions_run_by(lambda: fnn.apply_updates(params, updates))
    assert apply == {"tree:apply_updates", "tree:_flatten", "tree:_build"}, apply
    step = fnn_functions_run_by(lambda: opt.step(g, state, params, loss=loss))
    assert step == {"optimizers:step", "optimizers:apply", *common}, step
