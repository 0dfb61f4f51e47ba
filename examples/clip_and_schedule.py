"""Compose optimizers as optax does: clip the gradient's global norm, then Adam on a cosine
learning-rate schedule (tests/test_optimizers.py checks this chain against optax's)."""

import numpy as np

import fnn
from fnn.optimizers import adam, chain, clip_by_global_norm, cosine_decay_schedule

rng = np.random.default_rng(0)
x, y = rng.standard_normal((128, 20)).astype(np.float32), rng.integers(0, 3, 128)
params = fnn.init_mlp([20, 16, 3])
steps = 200
opt = chain(clip_by_global_norm(1.0), adam(cosine_decay_schedule(1e-2, steps)))
state = opt.init(params)  # (EmptyState(), (AdamState(...), ScheduleState(count=0, ...)))
for _ in range(steps):
    loss, g = fnn.grads(params, x, y)
    updates, state = opt.update(g, state, params, loss=loss)
    params = fnn.apply_updates(params, updates)
print(f"loss after {steps} steps: {fnn.loss_value(params, x, y):.3f}")
print(f"schedule count: {state[1][1].count}, gradient norm: {fnn.global_norm(g):.3f}")
