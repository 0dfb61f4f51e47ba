"""What keeping freed memory in glibc's malloc would gain for training (fnn leaves it alone).

    python benchmarks/malloc.py [--batch_sizes 16,64,1024] [--repeats 5] [--data_dir DIR]

Each step returns new arrays and frees the previous step's; glibc gives freed memory at the top
of its heap back to the system past its trim threshold, and the next step page-faults it in
again. Raising the thresholds (``mallopt``, as ``MALLOC_TRIM_THRESHOLD_=268435456
MALLOC_MMAP_THRESHOLD_=33554432`` in the environment does for a whole process) avoids that.
This times the second epoch of ``fit`` (as ``fnn train`` runs it: the workload W,
784-128-128-128-10, tanh, Adam, float32, 60,000 samples, evaluation passes excluded) and then
the public loop (``grads -> opt.step``), each in a fresh process, with and
without the setting alternating, and prints the medians, their ratio and the page faults per
step of the public loop on each side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from fnn import bench

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, time
tuned, data_dir, batches = json.loads(sys.argv[1])
if tuned:  # glibc's malloc.h: M_MMAP_THRESHOLD -3 (largest accepted), M_TRIM_THRESHOLD -1
    import ctypes
    mallopt = ctypes.CDLL(None).mallopt
    assert mallopt(-3, 32 * 1024 * 1024) and mallopt(-1, 256 * 1024 * 1024)
from fnn import bench, data
from fnn.train import TrainConfig, fit

x, y, _ = bench.workload("fashion_mnist", 60_000, 784, 10, "float32", data_dir)
cut = len(x) - 6000
splits = data.Splits(x[:cut], y[:cut], x[cut:], y[cut:], x[:0], y[:0])
loop = bench.fnn_epoch([784, 128, 128, 128, 10], activation="tanh", optimizer="adam",
                       learning_rate=1e-3, dtype="float32")
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rows = []
for batch in batches:
    config = TrainConfig(epochs=2, batch_size=batch, activation="tanh", num_layers=3,
                         hidden_size=128, dropout=0.0, lr_schedule="constant")
    _, history = fit(config, splits)
    fit_seconds = history["epochs"][-1]["seconds"] * len(x) / cut
    loop(x[:6400], y[:6400], batch)
    before, started = faults(), time.perf_counter()
    loop(x, y, batch)
    seconds = time.perf_counter() - started
    rows.append([fit_seconds, seconds, (faults() - before) / -(-len(x) // batch)])
print(json.dumps(rows))
"""


def child(tuned: bool, data_dir, batches: list[int]) -> list[list[float]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps([tuned, data_dir, batches])],
                         env=env, capture_output=True, text=True, check=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_sizes", default="16,64,1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data_dir", default=None)
    args = parser.parse_args()
    batches = [int(b) for b in args.batch_sizes.split(",")]
    runs = {False: [], True: []}
    for repeat in range(args.repeats):
        for tuned in (False, True) if repeat % 2 == 0 else (True, False):
            runs[tuned].append(child(tuned, args.data_dir, batches))
    print(f"{bench.cpu_name()}; BLAS: {bench.blas_threads()}; medians of {args.repeats} fresh "
          "processes each, alternating; W, float32, 60,000 samples")  # fmt: skip
    columns = ("batch", "fit s", "fit tuned", "ratio", "loop s", "loop tuned", "ratio",
               "faults/step", "tuned")  # fmt: skip
    print(" ".join(f"{c:>11}" for c in columns))
    for index, batch in enumerate(batches):
        plain, tuned = (np.median([run[index] for run in runs[t]], axis=0) for t in (False, True))
        cells = [plain[0], tuned[0], tuned[0] / plain[0], plain[1], tuned[1], tuned[1] / plain[1],
                 plain[2], tuned[2]]  # fmt: skip
        print(f"{batch:>11} " + " ".join(f"{c:>11.3f}" for c in cells))


if __name__ == "__main__":
    main()
