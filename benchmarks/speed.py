"""Workload W against jitted JAX + optax, PyTorch's eager loop and the GEMM floor, and the
course's baseline network against PyTorch.

    python benchmarks/speed.py [--batch_sizes 16,64,256,1024] [--repeats 3] [--against REV]

W: MLP 784-128-128-128-10, tanh, softmax cross-entropy, Adam (lr 1e-3), float32, one epoch of
60,000 Fashion-MNIST samples (synthetic data of the same shape if the files are absent). Prints,
from one run in one process (fnn and its peers interleaved, medians of ``--repeats``): seconds
per epoch of fnn's public loop (``grads -> opt.step``), of a jitted JAX + optax
step, of PyTorch, and of the loop's matrix products alone through NumPy (``gemm s``: the floor
under any NumPy implementation of W), of the same pure step as a bare NumPy loop with no
library around it (``numpy s``: checked to give fnn's numbers; what any NumPy implementation
of the pure step pays outside the GEMMs); fnn's ratio to each; and the epoch of ``fnn train``'s
loop (``fit``, the same pure step, without its evaluation passes; its second epoch, as most
epochs of a run) against the public loop. Then the course baseline (784-500-250-100-10,
sigmoid, plain SGD lr 0.01, batch 64) against PyTorch and its bare NumPy loop.

``--against REV`` times instead the public loop of this checkout against that of the commit
REV (say ``HEAD~1``), each epoch in a fresh process, the two alternating, with the jitted JAX
step and the GEMMs alone timed in between, in the same run: W at each batch size and the course
net at batch 64. It prints the medians, the ratio new/old, each side's spread (slowest over
fastest run) and both sides' ratios to JAX and to the GEMMs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import fnn
from fnn import bench, data
from fnn.train import TrainConfig, fit
from fnn.tree import ravel

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


def numpy_epoch(sizes: list[int], activation: str, optimizer: str) -> Callable:
    """An epoch function ``(x, y, batch_size) -> flat params`` of a bare NumPy loop with fnn's
    arithmetic (``activation`` tanh or sigmoid, ``optimizer`` adam at lr 1e-3 or sgd at 0.01)
    and no library around it: flat arrays instead of pytrees, no recognition, validation or
    checks, new arrays for every result (pure, as fnn's). Its time is the floor of the
    per-step work outside the GEMMs that any NumPy implementation of the pure step pays."""
    shapes = list(zip(sizes[:-1], sizes[1:], strict=True))
    bounds, offset = [], 0  # fnn's flat order: per layer the bias, then the weights
    for fan_in, fan_out in shapes:
        bounds.append((offset, offset + fan_out, offset + fan_out + fan_in * fan_out))
        offset = bounds[-1][2]
    act = fnn.activations.ACTIVATIONS[activation]

    def layers(buffer):
        return [(buffer[b:c].reshape(shape), buffer[a:b])
                for (a, b, c), shape in zip(bounds, shapes, strict=True)]  # fmt: skip

    def gradient(flat, xb, yb):
        weights, n = layers(flat), len(yb)
        h, inputs = xb, [xb]
        for w, b in weights[:-1]:
            h = h @ w
            h += b
            inputs.append(act.forward(h, out=h))
        delta = h @ weights[-1][0]
        delta += weights[-1][1]
        delta -= np.ascontiguousarray(delta.T).max(axis=0)[:, None]
        np.exp(delta, out=delta)
        delta /= (delta @ np.ones(delta.shape[1], delta.dtype))[:, None] * n
        delta[np.arange(n), yb] -= 1.0 / n
        grad = np.empty_like(flat)
        ones = np.ones(n, flat.dtype)
        for i, (gw, gb) in reversed(list(enumerate(layers(grad)))):
            np.matmul(inputs[i].T, delta, out=gw)
            np.matmul(ones, delta, out=gb)
            if i:
                delta = act.backward(delta @ weights[i][0].T, inputs[i])
        return grad

    def adam(grad, first, second, count, beta1=0.9, beta2=0.999, lr=1e-3, eps=1e-8):
        first_new = np.multiply(first, beta1)
        scratch = np.multiply(grad, 1 - beta1)
        first_new += scratch
        second_new = np.multiply(second, beta2)
        np.multiply(grad, grad, out=scratch)
        scratch *= 1 - beta2
        second_new += scratch
        correction = math.sqrt(1 - beta2**count)
        np.sqrt(second_new, out=scratch)
        scratch += eps * correction
        np.divide(first_new, scratch, out=scratch)
        scratch *= -lr * correction / (1 - beta1**count)
        return scratch, first_new, second_new

    def run(x: np.ndarray, y: np.ndarray, batch_size: int) -> np.ndarray:
        flat = ravel(fnn.init_mlp(sizes, seed=0))[0].copy()
        first, second = np.zeros_like(flat), np.zeros_like(flat)
        for count, start in enumerate(range(0, len(x), batch_size), 1):
            grad = gradient(flat, x[start : start + batch_size], y[start : start + batch_size])
            if optimizer == "adam":
                update, first, second = adam(grad, first, second, count)
            else:
                update = np.multiply(grad, -0.01)
            flat = flat + update
        return flat

    return run


def check_numpy_epoch(x: np.ndarray, y: np.ndarray, sizes, activation, optimizer) -> Callable:
    """The bare loop of ``numpy_epoch``, after checking that it computes what fnn's public loop
    computes (40 steps)."""
    lr = 1e-3 if optimizer == "adam" else 0.01
    ours = bench.fnn_epoch(sizes, activation=activation, optimizer=optimizer, learning_rate=lr,
                           dtype="float32")(x[:640], y[:640], 16)  # fmt: skip
    bare = numpy_epoch(sizes, activation, optimizer)
    gap = float(np.abs(ravel(ours)[0] - bare(x[:640], y[:640], 16)).max())
    if gap > 1e-5:
        raise SystemExit(f"the bare NumPy loop differs from fnn's by {gap:.2e}: fix it first")
    return bare


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


REPO = Path(__file__).resolve().parents[1]
COURSE = [784, 500, 250, 100, 10]
# One fresh process: the public loop's epoch for each (sizes, activation, optimizer, lr, batch)
CHILD = """
import json, sys, time
from fnn import bench
data_dir, cases = json.loads(sys.argv[1])
x, y, _ = bench.workload("fashion_mnist", 60_000, 784, 10, "float32", data_dir)
seconds = []
for sizes, activation, optimizer, learning_rate, batch in cases:
    epoch = bench.fnn_epoch(sizes, activation=activation, optimizer=optimizer,
                            learning_rate=learning_rate, dtype="float32")
    epoch(x[:6400], y[:6400], batch)  # warm: first-touch of the arrays, BLAS threads
    started = time.perf_counter()
    epoch(x, y, batch)
    seconds.append(time.perf_counter() - started)
print(json.dumps(seconds))
"""


def checkout(rev: str, folder: Path) -> Path:
    """The ``fnn`` package of commit ``rev``, unpacked into ``folder``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "fnn"],
                             capture_output=True, check=True).stdout  # fmt: skip
    archive_path = folder / "fnn.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(folder, filter="data")
    return folder


def child_seconds(root: Path, data_dir, cases: list) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps([data_dir, cases])], env=env,
                         capture_output=True, text=True, check=True, cwd=root).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def against(rev: str, batch_sizes: list[int], repeats: int, data_dir) -> None:
    """Old (``rev``) against new (this checkout), interleaved in one run; see the docstring."""
    cases = [(SIZES, "tanh", "adam", 1e-3, b) for b in batch_sizes]
    cases.append((COURSE, "sigmoid", "sgd", 0.01, 64))
    x, y, _ = bench.workload("fashion_mnist", 60_000, 784, 10, "float32", data_dir)
    peers = {
        "jax": [bench.jax_epoch(sizes, activation=act, optimizer=opt, learning_rate=lr,
                                dtype="float32") for sizes, act, opt, lr, _ in cases],
        "gemm": [bench.gemm_epoch(sizes, dtype="float32") for sizes, *_ in cases],
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        roots = {"old": checkout(rev, Path(folder)), "new": REPO}
        times = {name: [] for name in ("old", "new", "jax", "gemm")}
        for repeat in range(repeats):
            for side in ("old", "new") if repeat % 2 == 0 else ("new", "old"):
                times[side].append(child_seconds(roots[side], data_dir, cases))
            for name in ("jax", "gemm"):
                row = []
                for epoch, (*_, batch) in zip(peers[name], cases, strict=True):
                    if epoch is None:
                        row.append(float("nan"))
                        continue
                    epoch(x[:6400], y[:6400], batch)
                    started = time.perf_counter()
                    epoch(x, y, batch)
                    row.append(time.perf_counter() - started)
                times[name].append(row)
    print(f"{bench.cpu_name()}; BLAS: {bench.blas_threads()}; old = {rev}, new = this checkout; "
          f"medians of {repeats} fresh processes each, alternating")  # fmt: skip
    columns = ("case", "old s", "new s", "new/old", "old sprd", "new sprd", "old/jax", "new/jax",
               "old/gemm", "new/gemm")  # fmt: skip
    print(" ".join(f"{c:>9}" for c in columns))
    for index, (sizes, *_, batch) in enumerate(cases):
        column = {name: [run[index] for run in runs] for name, runs in times.items()}
        old, new, jax, gemm = (float(np.median(column[n])) for n in ("old", "new", "jax", "gemm"))
        spread = [max(column[n]) / min(column[n]) for n in ("old", "new")]
        label = f"W b{batch}" if sizes == SIZES else f"course b{batch}"
        cells = [old, new, new / old, *spread, old / jax, new / jax, old / gemm, new / gemm]
        print(f"{label:>9} " + " ".join(f"{c:>9.3f}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_sizes", default="16,64,256,1024")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--against", default=None, help="a commit to time the loop against")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.against:
        against(args.against, batch_sizes, args.repeats, args.data_dir)
        return

    x, y, _ = bench.workload("fashion_mnist", 60_000, 784, 10, "float32", args.data_dir)
    bare = check_numpy_epoch(x, y, SIZES, "tanh", "adam")
    result = bench.run(
        SIZES, batch_sizes=batch_sizes, repeats=args.repeats, vs_torch=True, vs_jax=True,
        extra_peers={"numpy": bare}, data_dir=args.data_dir,
    )  # fmt: skip
    print(f"{result['machine']}; BLAS: {result['blas']}; data: {result['data']}")
    print(f"matmul roofline {result['roofline_gflops']:.0f} GFLOP/s; "
          f"{result['flops_per_sample'] / 1e6:.3f} MFLOP per sample")  # fmt: skip
    columns = ("batch", "fnn s", "jax s", "fnn/jax", "torch s", "fnn/torch", "gemm s",
               "fnn/gemm", "jax/gemm", "numpy s", "fnn/numpy", "numpy/jax", "fit s", "fit/loop",
               "sklearn s")  # fmt: skip
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
            row["numpy_epoch_seconds"], row["ratio_to_numpy"],
            row["numpy_epoch_seconds"] / row.get("jax_epoch_seconds", nan),
            train, train / row["epoch_seconds"],
        ]  # fmt: skip
        print(f"{batch:>9} " + " ".join(f"{c:>9.3f}" for c in cells)
              + f" {'-' if sk is None else f'{sk:.3f}':>9}")  # fmt: skip

    bare = check_numpy_epoch(x, y, COURSE, "sigmoid", "sgd")
    baseline = bench.run(
        COURSE, batch_sizes=[64], activation="sigmoid", optimizer="sgd", learning_rate=0.01,
        repeats=args.repeats, vs_torch=True, extra_peers={"numpy": bare}, data_dir=args.data_dir,
    )["rows"][0]  # fmt: skip
    torch_seconds, numpy_seconds = (
        baseline.get("torch_epoch_seconds", nan),
        baseline["numpy_epoch_seconds"],
    )
    print(
        f"course baseline (784-500-250-100-10 sigmoid, SGD lr 0.01, batch 64): fnn "
        f"{baseline['epoch_seconds']:.3f} s, torch {baseline.get('torch_epoch_seconds', nan):.3f}"
        f" s, fnn/torch {baseline.get('ratio_to_torch', nan):.2f}, gemm "
        f"{baseline['gemm_epoch_seconds']:.3f} s, bare numpy {numpy_seconds:.3f} s "
        f"(numpy/torch {numpy_seconds / torch_seconds:.2f})"
    )


if __name__ == "__main__":
    main()
