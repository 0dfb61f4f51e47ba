import numpy as np

import fnn
from fnn.data import load

# The IDX files from $FNN_DATA_DIR, fnn's cache, /usr/share/datasets, or a download (see Data).
(x_train, y_train), (x_test, y_test) = load("fashion_mnist")
x_train = x_train.reshape(-1, 784) / np.float32(255)
x_test = x_test.reshape(-1, 784) / np.float32(255)

params = fnn.init_mlp([784, 128, 10], init="xavier", seed=0)
opt = fnn.optimizers.adam(learning_rate=1e-3)
state = opt.init(params)
order = np.random.default_rng(0).permutation(len(x_train))
for start in range(0, len(order), 64):  # one epoch of mini-batches of 64
    batch = order[start : start + 64]
    loss, grads = fnn.grads(params, x_train[batch], y_train[batch], activation="relu")
    params, state = opt.step(grads, state, params, loss=loss)  # update, then apply_updates

accuracy = (fnn.forward(params, x_test, activation="relu").argmax(axis=1) == y_test).mean()
print(f"test accuracy after one epoch: {accuracy:.2%}")
