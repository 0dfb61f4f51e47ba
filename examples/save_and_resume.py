"""Save params and optimizer states mid-training, load them, and continue bit for bit."""

import tempfile
from pathlib import Path

import numpy as np

import fnn

rng = np.random.default_rng(0)
x, y = rng.standard_normal((64, 20)).astype(np.float32), rng.integers(0, 3, 64)
params = fnn.init_mlp([20, 16, 3])
optimizers = {"adam": fnn.optimizers.adam(1e-2), "eve": fnn.optimizers.eve(1e-2)}


def train(params, opt, state, steps):
    for _ in range(steps):
        loss, g = fnn.grads(params, x, y)
        updates, state = opt.update(g, state, params, loss=loss)
        params = fnn.apply_updates(params, updates)
    return params, state


with tempfile.TemporaryDirectory() as folder:
    for name, opt in optimizers.items():
        p, state = train(params, opt, opt.init(params), steps=10)
        fnn.save_tree(Path(folder) / f"{name}.npz", {"params": p, "state": state})
        straight = train(p, opt, state, steps=10)  # the run never stopped

        template = {"params": fnn.init_mlp([20, 16, 3]), "state": opt.init(params)}
        saved = fnn.load_tree(Path(folder) / f"{name}.npz", template)
        resumed = train(saved["params"], opt, saved["state"], steps=10)
        same = fnn.tree_allclose(resumed, straight, rtol=0)
        print(f"{name}: bit-identical after resuming: {same}")
