"""Workload W against jitted JAX + optax, PyTorch's eager loop and the GEMM floor, and the
course's baseline network against PyTorch.

    python benchmarks/speed.py [--batch_sizes 16,64,256,1024] [--repeats 3]

W: MLP 784-128-128-128-10, tanh, softmax cross-entropy, Adam (lr 1e-3), float32, one epoch of
60,000 Fashion-MNIST samples (synthetic data of the same shape if the files are absent). Prints,
from one run in one process (fnn and its peers interleaved, medians of ``--repeats``): seconds
per epoch of fnn's public loop (``grads -> update -> apply_updates``), of a jitted JAX + optax
step, of PyTorch, and of the loop's matrix products alone through NumPy (``gemm s``: the floor
under any NumPy implementation of W); fnn's ratio to each; and the epoch of ``fnn train``'s
loop (``fit``, donating its buffers, without its evaluation passes; its second epoch, as most
epochs of a run) against the public loop. Then the course baseline (784-500-250-100-10,
sigmoid, plain SGD lr 0.01, batch 64) against PyTorch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fnn import bench, data
from fnn.train import TrainConfig, fit

SIZES = [784, 128, 128, 128, 10]


def sklearn_epoch(x: np.ndarray, y: np.ndarray, batch_size: int) -> float | None:
    """Seconds for one epoch of MLPClassifier with the same architecture, or None."""
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    model = MLPClassifier(
        hidden_layer_sizes=tuple(SIZES[1:-1]), activation="tanh", solver="adam",
        learning_rate_init=1e-3, batch_size=batch_size, shuffle=False, random_state=0,
    )  # fmt: skip
    model.partial_fit(x[:batch_size], y[:batch_size], classes=np.arange(10))
    started = time.perf_counter()
    model.partial_fit(x, y)
    return time.perf_counter() - started


def fit_epoch(x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """Training seconds of the second ``fnn train`` epoch (``fit``; evaluation passes
    excluded): the first also pays for warming up, as the timed loops' warm-up runs do."""
    config = TrainConfig(  # W exactly: no dropout, constant learning rate (not the defaults)
        epochs=2, batch_size=batch_size, activation="tanh", num_layers=3, hidden_size=128,
        dropout=0.0, lr_schedule="constant",
    )  # fmt: skip
    cut = len(x) - 6000
    splits = data.Splits(x[:cut], y[:cut], x[cut:], y[cut:], x[:0], y[:0])
    _, history = fit(config, splits)
    return history["epochs"][-1]["seconds"] * len(x) / cut  # scaled to the same sample count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_sizes", default="16,64,256,1024")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data_dir", default=None)
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    result = bench.run(
        SIZES, batch_sizes=batch_sizes, repeats=args.repeats, vs_torch=True, vs_jax=True,
        data_dir=args.data_dir,
    )  # fmt: skip
    print(f"{result['machine']}; BLAS: {result['blas']}; data: {result['data']}")
    print(f"matmul roofline {result['roofline_gflops']:.0f} GFLOP/s; "
          f"{result['flops_per_sample'] / 1e6:.3f} MFLOP per sample")  # fmt: skip
    x, y, _ = bench.workload("fashion_mnist", 60_000, 784, 10, "float32", args.data_dir)
    columns = ("batch", "fnn s", "jax s", "fnn/jax", "torch s", "fnn/torch", "gemm s",
               "fnn/gemm", "jax/gemm", "fit s", "fit/loop", "sklearn s")  # fmt: skip
    print(" ".join(f"{c:>9}" for c in columns))
    nan = float("nan")
    for row in result["rows"]:
        batch = row["batch_size"]
        train = float(np.median([fit_epoch(x, y, batch) for _ in range(args.repeats)]))
        sk = sklearn_epoch(x, y, batch)
        cells = [
            row["epoch_seconds"], row.get("jax_epoch_seconds", nan), row.get("ratio_to_jax", nan),
            row.get("torch_epoch_seconds", nan), row.get("ratio_to_torch", nan),
            row["gemm_epoch_seconds"], row["ratio_to_gemm"],
            row.get("jax_epoch_seconds", nan) / row["gemm_epoch_seconds"],
            train, train / row["epoch_seconds"],
        ]  # fmt: skip
        print(f"{batch:>9} " + " ".join(f"{c:>9.3f}" for c in cells)
              + f" {'-' if sk is None else f'{sk:.3f}':>9}")  # fmt: skip

    baseline = bench.run(
        [784, 500, 250, 100, 10], batch_sizes=[64], activation="sigmoid", optimizer="sgd",
        learning_rate=0.01, repeats=args.repeats, vs_torch=True, data_dir=args.data_dir,
    )["rows"][0]  # fmt: skip
    print(
        f"course baseline (784-500-250-100-10 sigmoid, SGD lr 0.01, batch 64): fnn "
        f"{baseline['epoch_seconds']:.3f} s, torch {baseline.get('torch_epoch_seconds', nan):.3f}"
        f" s, fnn/torch {baseline.get('ratio_to_torch', nan):.2f}, gemm "
        f"{baseline['gemm_epoch_seconds']:.3f} s"
    )


if __name__ == "__main__":
    main()
