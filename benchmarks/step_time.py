"""Time one training step of the public loop (grads -> opt.step: the update and its application).

    python benchmarks/step_time.py [--sizes 784,128,128,128,10] [--batch 64] [--optimizer adam]
                                   [--schedule cosine]

Prints the median time per step over several one-epoch repeats and the implied seconds per
60,000-sample epoch, on Fashion-MNIST when it is found (``FNN_DATA_DIR``), else on synthetic
data of its shape. Which one matters more than the values: with synthetic data nothing raises
glibc's mmap threshold, so each step's new arrays (540 KB each for W) are mapped afresh and
page-faulted in, which can triple a step (``benchmarks/malloc.py``); compare runs on the same
data.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import fnn
from fnn import bench


def one_epoch(params, opt, state, x, y, batch, activation):
    for start in range(0, len(x), batch):
        loss, grads = fnn.grads(
            params, x[start : start + batch], y[start : start + batch], activation=activation
        )
        params, state = opt.step(grads, state, params, loss=loss)
    return params, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="784,128,128,128,10")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--schedule",
        choices=["constant", "cosine"],
        default="constant",
        help="the learning rate 1e-3, or a cosine from it over one epoch",
    )
    args = parser.parse_args()

    sizes = [int(s) for s in args.sizes.split(",")]
    x, y, source = bench.workload("fashion_mnist", args.samples, sizes[0], sizes[-1], args.dtype)
    params = fnn.init_mlp(sizes, seed=0, dtype=args.dtype)
    steps = -(-args.samples // args.batch)
    learning_rate = 1e-3
    if args.schedule == "cosine":  # as fnn train's default: a chain ending in the schedule
        learning_rate = fnn.optimizers.cosine_decay_schedule(1e-3, steps)
    opt = fnn.optimizers.get(args.optimizer, learning_rate=learning_rate)
    state = opt.init(params)
    one_epoch(
        params, opt, state, x[: 20 * args.batch], y[: 20 * args.batch], args.batch, args.activation
    )  # warm-up

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        one_epoch(params, opt, state, x, y, args.batch, args.activation)
        times.append(time.perf_counter() - start)
    epoch = float(np.median(times))
    print(f"machine: {platform.machine()}, {platform.python_version()}, numpy {np.__version__}")
    print(
        f"MLP {sizes}, {args.activation}, {args.optimizer} ({args.schedule} learning rate), "
        f"batch {args.batch}, {args.dtype}, {source} data"
    )
    print(
        f"time per step: {1e6 * epoch / steps:.1f} us (median of {args.repeats} epochs; "
        f"min {1e6 * min(times) / steps:.1f}, max {1e6 * max(times) / steps:.1f})"
    )
    print(f"time per epoch of {args.samples} samples: {epoch:.3f} s")


if __name__ == "__main__":
    main()
