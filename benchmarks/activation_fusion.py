"""Would fusing the activation's backward pay? fnn's tanh backward against one numba loop.

    python benchmarks/activation_fusion.py [--width 128] [--batch_sizes 16,64,256]

``fnn.activations`` computes ``delta * (1 - h*h)`` as three NumPy passes over a layer's
outputs, in place. The alternative is one compiled loop with the same arithmetic (checked here
to give the same bits). Both are timed on the same arrays, restored before every call (the
restore is timed alone and subtracted); each figure is the fastest of 7 repeats of 20,000
calls, in microseconds per layer.
"""

from __future__ import annotations

import argparse
import platform
import timeit

import numpy as np

from fnn.activations import get


def compiled_tanh_backward():
    """``delta *= 1 - h*h`` as one numba loop (``one`` in the arrays' dtype, as NumPy casts 1)."""
    import numba

    @numba.njit(error_model="numpy")
    def backward(delta, h, one):
        d, out = delta.reshape(-1), h.reshape(-1)
        for i in range(d.size):
            d[i] = d[i] * (one - out[i] * out[i])
        return delta

    return backward


def per_layer(batch: int, width: int, fused, rng: np.random.Generator) -> tuple[float, float]:
    """(NumPy's, the compiled loop's) microseconds for one layer of ``batch`` x ``width``."""
    numpy_backward, one = get("tanh").backward, np.float32(1)
    delta0 = rng.standard_normal((batch, width)).astype(np.float32)
    h0 = np.tanh(rng.standard_normal((batch, width))).astype(np.float32)
    delta, h = delta0.copy(), h0.copy()
    if not np.array_equal(fused(delta, h, one), numpy_backward(delta0.copy(), h0.copy())):
        raise SystemExit("the compiled loop does not give NumPy's bits")

    def restore():
        np.copyto(delta, delta0)
        np.copyto(h, h0)

    def timed(call):
        return min(timeit.repeat(call, number=20_000, repeat=7)) / 20_000 * 1e6

    base = timed(restore)
    numpy_us = timed(lambda: (restore(), numpy_backward(delta, h))) - base
    return numpy_us, timed(lambda: (restore(), fused(delta, h, one))) - base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch_sizes", default="16,64,256")
    args = parser.parse_args()
    try:
        fused = compiled_tanh_backward()
    except ImportError:
        raise SystemExit("numba is not installed: pip install 'fnn[fast]'") from None
    machine = platform.processor() or platform.machine()
    print(f"tanh backward, float32, width {args.width}; {machine}")
    print(f"{'batch':>6} {'numpy us':>9} {'fused us':>9} {'saved us':>9}")
    rng = np.random.default_rng(0)
    for batch in map(int, args.batch_sizes.split(",")):
        numpy_us, fused_us = per_layer(batch, args.width, fused, rng)
        print(f"{batch:>6} {numpy_us:>9.2f} {fused_us:>9.2f} {numpy_us - fused_us:>9.2f}")


if __name__ == "__main__":
    main()
