"""Train the default configuration of ``fnn train`` and print test accuracy and wall time.

    python benchmarks/accuracy.py [--datasets fashion_mnist,mnist] [--epochs 5,25]

Reads the data like ``fnn train`` does (``$FNN_DATA_DIR``, the cache, or a download). The
test set is used once per trained model, for the printed figure only.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

import numpy as np

from fnn import data, metrics
from fnn.train import TrainConfig, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="fashion_mnist,mnist")
    parser.add_argument(
        "--epochs", default=str(TrainConfig().epochs), help="Comma-separated epoch budgets."
    )
    parser.add_argument("--data_dir", default=None)
    args = parser.parse_args()

    default = TrainConfig()
    print(f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print(
        f"default config: {default.optimizer} lr {default.learning_rate:g} "
        f"({default.lr_schedule}), "
        f"{list(default.hidden_layers())} {default.activation}, batch {default.batch_size}, "
        f"{default.weight_init} init, weight decay {default.weight_decay:g}, "
        f"dropout {default.dropout:g}"
    )
    print(f"{'dataset':<14} {'epochs':>6} {'val acc':>8} {'test acc':>9} {'wall s':>7}")
    for name in args.datasets.split(","):
        splits = data.prepare(name, data_dir=args.data_dir, seed=default.seed, progress=False)
        for epochs in (int(e) for e in args.epochs.split(",")):
            config = dataclasses.replace(default, dataset=name, epochs=epochs)
            started = time.perf_counter()
            params, history = fit(config, splits)
            wall = time.perf_counter() - started
            test = metrics.evaluate(
                params, splits.x_test, splits.y_test, activation=config.activation, loss=config.loss
            )
            val = history["epochs"][-1]["val_accuracy"]
            print(f"{name:<14} {epochs:>6} {val:>8.2%} {test['accuracy']:>9.2%} {wall:>7.1f}")


if __name__ == "__main__":
    main()
