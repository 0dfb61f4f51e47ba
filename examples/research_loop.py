import gzip
import os

import numpy as np

import fnn


def idx(name, header):  # a canonical IDX .gz file: big-endian header, then uint8 data
    folder = os.path.join(os.environ.get("FNN_DATA_DIR", "../shared/datasets"), "fashion-mnist")
    return np.frombuffer(gzip.open(os.path.join(folder, name)).read(), np.uint8, offset=header)


x_train = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784) / np.float32(255)
y_train = idx("train-labels-idx1-ubyte.gz", 8)
x_test = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784) / np.float32(255)
y_test = idx("t10k-labels-idx1-ubyte.gz", 8)

params = fnn.init_mlp([784, 128, 10], init="xavier", seed=0)
opt = fnn.optimizers.adam(learning_rate=1e-3)
state = opt.init(params)
order = np.random.default_rng(0).permutation(len(x_train))
for start in range(0, len(order), 64):  # one epoch of mini-batches of 64
    batch = order[start : start + 64]
    loss, grads = fnn.grads(params, x_train[batch], y_train[batch], activation="relu")
    updates, state = opt.update(grads, state, params, loss=loss)
    params = fnn.apply_updates(params, updates)

accuracy = (fnn.forward(params, x_test, activation="relu").argmax(axis=1) == y_test).mean()
print(f"test accuracy after one epoch: {accuracy:.2%}")
