"""Workload W against PyTorch's eager loop (and scikit-learn's MLPClassifier when installed).

    python benchmarks/speed.py [--batch_sizes 64,1024] [--repeats 3]

W: MLP 784-128-128-128-10, tanh, softmax cross-entropy, Adam (lr 1e-3), float32, one epoch of
60,000 Fashion-MNIST samples (synthetic data of the same shape if the files are absent). Prints,
from one run in one process: seconds per epoch of fnn's public loop and of PyTorch (interleaved),
their ratio, the share of the matmul roofline, the epoch of ``fnn train``'s loop (``fit``,
without its evaluation passes; its second epoch, as most epochs of a run) against the public
loop, and the BLAS floor: an epoch of only the loop's matrix products through NumPy, which no
NumPy implementation of W can undercut (``matmul s``; ``floor/torch`` compares it with torch's
whole epoch).
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


def matmul_epoch(x: np.ndarray, batch_size: int) -> float:
    """Seconds of one epoch of only W's matrix products per step, on the same batches: the
    forward pass, the weight gradients and the hidden-input gradients (``flops_per_sample``)."""
    rng = np.random.default_rng(0)
    weights = [
        (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(x.dtype)
        for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:], strict=True)
    ]
    started = time.perf_counter()
    for start in range(0, len(x), batch_size):
        inputs = [x[start : start + batch_size]]
        for w in weights:
            inputs.append(inputs[-1] @ w)
        delta = inputs.pop()
        for i in range(len(weights) - 1, -1, -1):
            inputs[i].T @ delta
            if i > 0:
                delta = delta @ weights[i].T
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
    parser.add_argument("--batch_sizes", default="64,1024")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data_dir", default=None)
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    result = bench.run(
        SIZES, batch_sizes=batch_sizes, repeats=args.repeats, vs_torch=True,
        data_dir=args.data_dir,
    )  # fmt: skip
    print(f"{result['machine']}; BLAS: {result['blas']}; data: {result['data']}")
    print(f"matmul roofline {result['roofline_gflops']:.0f} GFLOP/s; "
          f"{result['flops_per_sample'] / 1e6:.3f} MFLOP per sample")  # fmt: skip
    x, y, _ = bench.workload("fashion_mnist", 60_000, 784, 10, "float32", args.data_dir)
    header = f"{'batch':>5} {'fnn s':>7} {'torch s':>8} {'fnn/torch':>9} {'roofline':>8}"
    print(
        header + f" {'fnn train s':>11} {'train/loop':>10} {'matmul s':>8} {'floor/torch':>11}"
        f" {'sklearn s':>9}"
    )
    for row in result["rows"]:
        batch = row["batch_size"]
        torch_seconds = row.get("torch_epoch_seconds", float("nan"))
        ratio = row.get("ratio_to_torch", float("nan"))
        train = float(np.median([fit_epoch(x, y, batch) for _ in range(args.repeats)]))
        matmuls = float(np.median([matmul_epoch(x, batch) for _ in range(args.repeats)]))
        sk = sklearn_epoch(x, y, batch)
        print(
            f"{batch:>5} {row['epoch_seconds']:>7.3f} {torch_seconds:>8.3f} {ratio:>9.2f} "
            f"{row['roofline_fraction']:>8.0%} {train:>11.3f} "
            f"{train / row['epoch_seconds']:>10.2f} {matmuls:>8.3f} "
            f"{matmuls / torch_seconds:>11.2f} {'-' if sk is None else f'{sk:.3f}':>9}"
        )


if __name__ == "__main__":
    main()
