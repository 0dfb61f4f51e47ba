"""``Optimizer.step``: the update and its application in one call, bit for bit what
``update`` followed by ``apply_updates`` gives, on both paths (in one compiled pass on the
fused one), for every optimizer, dtype and weight decay, through a chain and for an optimizer
made of ``init`` and ``update`` alone."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest

import fnn

pytestmark = pytest.mark.usefixtures("update_path")

NAMES = list(fnn.optimizers.OPTIMIZERS)


def bits(tree) -> list[tuple]:
    """Every leaf's dtype, shape and bytes, in order: equal lists are equal bits."""
    return [(np.asarray(leaf).dtype, np.shape(leaf), np.asarray(leaf).tobytes())
            for leaf in fnn.tree_leaves(tree)]  # fmt: skip


def gradients(params, rng, scale):
    return fnn.tree_map(lambda a: (rng.standard_normal(a.shape) * scale).astype(a.dtype), params)


def both_ways(opt, params, steps=12, seed=3):
    """``(params, state)`` after ``steps`` of ``update`` and ``apply_updates``, then of
    ``step``, on the same gradients (of growing scale) and losses."""
    results = []
    for stepped in (False, True):
        rng, p, state = np.random.default_rng(seed), params, opt.init(params)
        for t in range(steps):
            g, loss = gradients(p, rng, 10.0 ** (t % 5 - 2)), 1.0 + rng.random()
            if stepped:
                p, state = opt.step(g, state, p, loss=loss)
            else:
                updates, state = opt.update(g, state, p, loss=loss)
                p = fnn.apply_updates(p, updates)
        results.append((p, state))
    return results


@pytest.mark.parametrize(
    ("name", "weight_decay", "dtype"),
    list(itertools.product(NAMES, [0.0, 0.01], [np.float32, np.float64])),
)
def test_step_gives_the_bits_of_update_then_apply_updates(name, weight_decay, dtype):
    opt = fnn.optimizers.get(name, learning_rate=0.01, weight_decay=weight_decay)
    params = fnn.init_mlp([13, 7, 3], dtype=dtype, seed=1)
    (p_updated, s_updated), (p_stepped, s_stepped) = both_ways(opt, params)
    assert bits(p_stepped) == bits(p_updated)
    assert bits(s_stepped) == bits(s_updated)
    assert not np.array_equal(fnn.ravel(p_stepped)[0], fnn.ravel(params)[0])


def test_the_fused_step_adds_in_the_loop_and_returns_one_new_flat_array(
    compiled_calls, update_path
):
    params = fnn.init_mlp([6, 5, 3], seed=2)
    opt = fnn.optimizers.adam(0.01)
    state = opt.init(params)
    g = gradients(params, np.random.default_rng(0), 1.0)
    new, _ = opt.step(g, state, params)
    opt.update(g, state, params)
    applied = [apply for _, apply in compiled_calls]
    assert applied == ([True, False] if update_path == "fused" else [])  # apply, then not
    flat = fnn.ravel(new)[0]
    assert flat.base is None and all(leaf.base is flat for leaf in fnn.tree_leaves(new))
    assert not any(np.shares_memory(flat, a) for a in fnn.tree_leaves((params, g, state)))


def test_a_chain_steps_with_its_last_transformation():
    schedule = fnn.optimizers.cosine_decay_schedule(0.05, 8)
    opts = {
        "clip, adam": fnn.optimizers.chain(
            fnn.optimizers.clip_by_global_norm(0.5), fnn.optimizers.adam(0.01)
        ),
        "eve on a schedule": fnn.optimizers.eve(schedule, weight_decay=0.01),
        "nothing": fnn.optimizers.chain(),
    }
    params = fnn.init_mlp([5, 4, 2], seed=4)
    for name, opt in opts.items():
        (p_updated, s_updated), (p_stepped, s_stepped) = both_ways(opt, params, steps=10)
        assert bits(p_stepped) == bits(p_updated), name
        assert bits(s_stepped) == bits(s_updated), name
    assert opts["nothing"].apply is None  # no transformation to step with: step adds the grads


def test_a_schedule_scales_the_update_and_adds_it_in_one_pass(compiled_calls, update_path):
    """A learning rate that is a schedule is SGD's rule with the schedule's value for -lr, after
    the optimizer's own: the chain's step ends in one pass (compiled, on the fused path) that
    scales each update and adds it, bit for bit Adam's update times the value, then
    ``apply_updates``."""
    schedule = fnn.optimizers.cosine_decay_schedule(0.05, 8)
    opt, plain = fnn.optimizers.adam(schedule), fnn.optimizers.adam(1.0)
    params = fnn.init_mlp([5, 4, 2], seed=4)
    p, state, q, plain_state = params, opt.init(params), params, plain.init(params)
    rng = np.random.default_rng(0)
    for t in range(10):
        g = gradients(p, rng, 1.0)
        p, state = opt.step(g, state, p)
        updates, plain_state = plain.update(g, plain_state, q)
        scale = np.float32(schedule(t))
        q = fnn.apply_updates(q, fnn.tree_map(lambda u, s=scale: u * s, updates))
        assert bits(p) == bits(q), t
    assert state[1].count == 10
    # per step: Adam's update, the schedule's step (apply), the reference's update
    expected = [("adam_loop", False), ("sgd_loop", True), ("adam_loop", False)] * 10
    assert compiled_calls == (expected if update_path == "fused" else [])


def test_an_optimizer_of_init_and_update_alone_steps_through_apply_updates():
    def update(grads, state, params=None, *, loss=None):
        return fnn.tree_map(lambda g: -0.5 * g, grads), state + 1

    opt = fnn.Optimizer(lambda params: 0, update)
    params = {"w": np.array([1.0, 2.0]), "b": np.array([0.5])}
    grads = {"w": np.array([2.0, -2.0]), "b": np.array([1.0])}
    new, state = opt.step(grads, opt.init(params), params)
    assert state == 1 and bits(new) == bits({"b": np.array([0.0]), "w": np.array([0.0, 3.0])})


def test_params_of_several_dtypes_are_added_each_in_its_own(update_path):
    params = {"half": np.array([1.0, 2.0, 3.0], np.float16), "w": np.ones(4, np.float32)}
    opt = fnn.optimizers.momentum(0.1, weight_decay=0.01)
    (p_updated, s_updated), (p_stepped, s_stepped) = both_ways(opt, params, steps=4)
    assert p_stepped["half"].dtype == np.float16 and p_stepped["w"].dtype == np.float32
    assert bits(p_stepped) == bits(p_updated) and bits(s_stepped) == bits(s_updated)


def test_step_refuses_what_update_refuses_and_wants_the_params():
    opt = fnn.optimizers.adam(0.01)
    params = fnn.init_mlp([3, 2], seed=0)
    state = opt.init(params)
    renamed = {"layer_0": {"bias": params["layer_0"]["b"], "w": params["layer_0"]["w"]}}
    with pytest.raises(ValueError, match=r"grads differ from the optimizer state at layer_0"):
        opt.step(renamed, state, params)
    with pytest.raises(ValueError, match="state must be the AdamState"):
        opt.step(params, fnn.optimizers.sgd(0.1).init(params), params)
    with pytest.raises(ValueError, match="step needs the params it steps from"):
        opt.step(params, state, None)
    with pytest.raises(ValueError, match=r"updates differ from params at layer_0"):
        opt.step(params, state, renamed)  # as apply_updates would say
    with pytest.raises(fnn.optimizers.LossError, match="eve needs the minibatch loss"):
        fnn.optimizers.eve(0.01).step(params, fnn.optimizers.eve(0.01).init(params), params)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_a_step_allocates_its_results_and_no_temporary(name):
    params = fnn.init_mlp([784, 128, 128, 128, 10])
    opt = fnn.optimizers.get(name, learning_rate=1e-3)
    g = gradients(params, np.random.default_rng(0), 1.0)
    g = fnn.ravel(g)[1].unravel(fnn.ravel(g)[0])  # as fnn.grads gives them: one flat array
    state = opt.init(params)
    opt.step(g, state, params)  # the compiled loop (or recorded passes) ready
    arrays = {"sgd": 1, "adam": 3}[name]  # the new params, and Adam's m and v
    tracemalloc.start()
    try:
        new, _ = opt.step(g, state, params)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = fnn.ravel(params)[0].nbytes
    assert arrays * size <= peak < arrays * size + 64 * 1024, (peak, size)
