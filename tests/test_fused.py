"""The two paths of an update: numba's compiled loops (fnn.fused) against NumPy's passes
(fnn.passes), bit for bit, for every optimizer, dtype and weight decay; numba stays off the
import path, obeys FNN_FUSED=0 and caches its loops on disk."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fnn
from fnn import fused

numba = pytest.importorskip("numba", reason="numba is not installed: pip install 'fnn[fast]'")

NAMES = list(fnn.optimizers.OPTIMIZERS)
HPARAMS = {"momentum": 0.8, "beta": 0.95, "beta1": 0.85, "beta2": 0.99, "beta3": 0.9,
           "epsilon": 1e-6}  # fmt: skip


def make(name: str, weight_decay: float, fused_path: bool, monkeypatch) -> fnn.Optimizer:
    monkeypatch.setenv("FNN_FUSED", "1" if fused_path else "0")
    accepted = fnn.optimizers.hyperparameters(name)
    hparams = {key: value for key, value in HPARAMS.items() if key in accepted}
    return fnn.optimizers.get(name, learning_rate=0.01, weight_decay=weight_decay, **hparams)


def trajectory(opt: fnn.Optimizer, dtype, scales=(1e-3, 0.1, 1.0, 10.0, 1e3), steps=25) -> list:
    """Params, states and updates of ``steps`` updates on gradients of the ``scales`` in turn,
    with zeros and negative zeros among them, on an odd number of parameters."""
    rng = np.random.default_rng(7)
    params = fnn.tree_map(lambda a: rng.standard_normal(a.shape).astype(dtype),
                          fnn.init_mlp([13, 7, 3], dtype=dtype))  # fmt: skip
    state, seen = opt.init(params), []
    for step in range(steps):
        scale = scales[step % len(scales)]
        grads = fnn.tree_map(lambda a, s=scale: (rng.standard_normal(a.shape) * s).astype(dtype),
                             params)  # fmt: skip
        grads["layer_0"]["b"][:3] = [0.0, -0.0, 0.0]
        updates, state = opt.update(grads, state, params, loss=1.0 + rng.random())
        params = fnn.apply_updates(params, updates)
        seen.append((updates, params, state))
    return seen


def same_bits(a, b) -> bool:
    leaves_a, leaves_b = fnn.tree_leaves(a), fnn.tree_leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        np.asarray(x).dtype == np.asarray(y).dtype
        and np.asarray(x).tobytes() == np.asarray(y).tobytes()
        for x, y in zip(leaves_a, leaves_b, strict=True)
    )


@pytest.mark.parametrize(
    ("name", "weight_decay", "dtype"),
    list(itertools.product(NAMES, [0.0, 0.01], [np.float32, np.float64])),
)
def test_the_fused_loop_gives_numpys_bits(name, weight_decay, dtype, monkeypatch, compiled_calls):
    numpy_path = trajectory(make(name, weight_decay, False, monkeypatch), dtype)
    assert compiled_calls == []
    fused_path = trajectory(make(name, weight_decay, True, monkeypatch), dtype)
    assert len(compiled_calls) == 25  # every update ran compiled
    assert all(np.isfinite(fnn.ravel(params)[0]).all() for _, params, _ in fused_path)
    for step, (ours, theirs) in enumerate(zip(fused_path, numpy_path, strict=True)):
        assert same_bits(ours, theirs), f"{name} step {step + 1} differs"


@pytest.mark.parametrize("name", NAMES)
def test_gradients_at_the_ends_of_float32_go_through_both_paths_alike(name, monkeypatch):
    # squares of 1e20 overflow float32 and of 1e-30 underflow, on purpose
    with np.errstate(all="ignore"):
        runs = [
            trajectory(make(name, 0.01, path, monkeypatch), np.float32, (1e-30, 1e20, 1.0), 4)
            for path in (False, True)
        ]
    for step, (theirs, ours) in enumerate(zip(*runs, strict=True)):
        assert same_bits(ours, theirs), f"{name} step {step + 1} differs"


def test_a_weight_decay_below_the_dtype_is_none_on_both_paths(monkeypatch, compiled_calls):
    params = {"w": np.array([1.0, -2.0, 3.0], np.float32)}
    grads = {"w": np.array([0.5, -0.0, 0.25], np.float32)}
    results = []
    for fused_path in (False, True):
        opt = make("sgd", 1e-46, fused_path, monkeypatch)  # 0 in float32
        results.append(opt.update(grads, opt.init(params), params))
    assert compiled_calls == [("sgd_loop", False)] and same_bits(*results)
    assert np.array_equal(results[0][0]["w"], grads["w"] * np.float32(-0.01))


def test_non_finite_numbers_go_through_both_paths_alike(monkeypatch, compiled_calls):
    params = {"w": np.array([1.0, -2.0, 0.0, 3.0], np.float32)}
    grads = {"w": np.array([np.inf, np.nan, 0.0, -np.inf], np.float32)}
    results = []
    for fused_path in (False, True):
        opt = make("adam", 0.01, fused_path, monkeypatch)
        with np.errstate(invalid="ignore"):  # inf / inf is nan, as it should be
            results.append(opt.update(grads, opt.init(params), params))
    assert compiled_calls == [("adam_loop", False)] and same_bits(*results)
    assert np.isnan(results[0][0]["w"][[0, 1, 3]]).all()  # inf / inf, as NumPy


def test_float16_params_take_the_numpy_path(monkeypatch, compiled_calls):
    params = {"w": np.ones(5, np.float16)}
    opt = make("adam", 0.0, True, monkeypatch)
    updates, state = opt.update({"w": np.full(5, 0.5, np.float16)}, opt.init(params), params)
    assert updates["w"].dtype == np.float16 and state.first_moment.dtype == np.float16
    assert compiled_calls == []


def test_moments_of_another_dtype_and_integer_params_are_refused(monkeypatch):
    params = {"w": np.ones(3, np.float32)}
    opt = make("adam", 0.0, True, monkeypatch)
    state = opt.init(params)._replace(second_moment=np.zeros(3))
    with pytest.raises(ValueError, match=r"state.second_moment must be a flat array of 3 float32 "
                       r"values \(see state.layout\), got a \(3,\) float64 array"):  # fmt: skip
        opt.update(params, state, params)
    ints = {"w": np.ones(3, np.int64)}
    with pytest.raises(ValueError, match="optimizers update floating-point parameters, got int64"):
        opt.update(ints, opt.init(ints), ints)


def test_a_loop_over_equations_numba_was_not_told_about_is_refused(monkeypatch):
    monkeypatch.setenv("FNN_FUSED", "1")
    rule = fnn.optimizers.Rule(lambda g, a: (g * a,), fnn.rules.sgd_loop, (0.1,))
    with pytest.raises(TypeError, match="runs in a compiled loop: mark it @compilable"):
        fnn.optimizers.lift(fnn.optimizers.SGDState, rule, 0.0)


def run_python(code: str, **env: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **env})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


UPDATE = """
import sys
import numpy as np
import fnn
params = fnn.init_mlp([4, 3])
opt = fnn.optimizers.adam(0.1)
state = opt.init(params)
print("numba" in sys.modules)
updates, state = opt.update(params, state, params)
print("numba" in sys.modules)
"""


def test_import_fnn_never_imports_numba_the_first_fused_update_does(tmp_path):
    assert run_python(UPDATE, NUMBA_CACHE_DIR=str(tmp_path), FNN_FUSED="1").split() == [
        "False",
        "True",
    ]


def test_fnn_fused_0_keeps_numba_out_altogether(tmp_path):
    assert run_python(UPDATE, FNN_FUSED="0").split() == ["False", "False"]


def test_the_compiled_loops_are_cached_on_disk_for_the_next_process(tmp_path):
    code = (
        UPDATE
        + """
from fnn import fused, rules
stats = fused.compiled(rules.adam_loop).stats
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""
    )
    first = run_python(code, NUMBA_CACHE_DIR=str(tmp_path), FNN_FUSED="1").split()
    assert first[2:] == ["0", "1"]  # compiled, and written
    assert any(path.suffix == ".nbi" for path in tmp_path.rglob("*adam_loop*"))
    second = run_python(code, NUMBA_CACHE_DIR=str(tmp_path), FNN_FUSED="1").split()
    assert second[2:] == ["1", "0"]  # loaded


BROKEN_NUMBA = """
import warnings
import fnn
from fnn import fused
params = fnn.init_mlp([4, 3])
adam, sgd = fnn.optimizers.adam(0.1), fnn.optimizers.sgd(0.1)
print(fused.describe())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    adam.update(params, adam.init(params), params)  # line 10
    sgd.step(params, sgd.init(params), params)  # line 11
for warning in caught:
    print(warning.filename, warning.lineno, warning.message)
print(fused.describe())
"""


def test_a_numba_that_cannot_be_imported_leaves_updates_on_numpy_with_a_warning(tmp_path):
    """Each loop's first update warns, at the user's line (``update`` or ``step``), and the
    updates run on NumPy's path, which ``describe`` then names."""
    (tmp_path / "numba").mkdir()
    (tmp_path / "numba" / "__init__.py").write_text("raise ImportError('built for another NumPy')")
    script = tmp_path / "script.py"
    script.write_text(BROKEN_NUMBA)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "FNN_FUSED": "1",
                                            "PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "numpy (numba cannot be imported)"  # describe tries the import itself
    message = ("numba cannot be imported (built for another NumPy); updates run on NumPy's "
               "path (FNN_FUSED=0 says so without this warning)")  # fmt: skip
    assert lines[1:] == [f"{script} 10 {message}", f"{script} 11 {message}",
                         "numpy (numba cannot be imported)"]  # fmt: skip


def test_with_no_folder_to_cache_in_the_loop_is_compiled_in_each_process(tmp_path):
    env = {"FNN_FUSED": "1", "NUMBA_CACHE_LOCATOR_CLASSES": "ZipCacheLocator"}  # finds none
    done = subprocess.run([sys.executable, "-c", UPDATE], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env})  # fmt: skip
    assert done.returncode == 0, done.stderr
    # at the user's line: UPDATE's ninth, opt.update
    assert "<string>:9: UserWarning: numba cannot cache the compiled updates (cannot cache " \
           "function" in done.stderr  # fmt: skip
    assert "set NUMBA_CACHE_DIR to a writable folder" in done.stderr
    assert done.stdout.split() == ["False", "True"]


def test_describe_names_the_path_and_why(monkeypatch):
    monkeypatch.delenv("FNN_FUSED", raising=False)
    assert fused.describe() == f"fused (numba {numba.__version__})"
    for off in ("0", "false", "Off", " no "):
        monkeypatch.setenv("FNN_FUSED", off)
        assert fused.describe() == "numpy (FNN_FUSED=0)"
    monkeypatch.setenv("FNN_FUSED", "1")
    monkeypatch.setattr(fused.importlib.util, "find_spec", lambda name: None)
    assert fused.describe() == "numpy (numba is not installed)"
    assert fused.unavailable() == "numba is not installed: pip install 'fnn[fast]'"


def test_fnn_train_says_which_path_ran_and_trains_alike_on_both(data_dir, tmp_path):
    command = [sys.executable, "-m", "fnn", "train", "--epochs", "1", "--train_subset", "300",
               "--tracker", "none", "--data_dir", str(data_dir)]  # fmt: skip
    results = []
    for fused_env, path in (("1", "fused (numba"), ("0", "numpy (FNN_FUSED=0)")):
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                              env={**os.environ, "FNN_FUSED": fused_env})  # fmt: skip
        assert done.returncode == 0, done.stderr
        start, *_, result = done.stdout.strip().splitlines()
        assert f"; updates {path}" in start
        results.append(result.split("(")[0])  # the accuracies, not the time
    assert results[0] == results[1] and "test accuracy" in results[0]


@pytest.mark.parametrize(
    "failure",
    ["ImportError('built for another NumPy')",  # numba's own check of NumPy's version
     "OSError('Could not find/load shared object file')"],  # llvmlite's library missing
)  # fmt: skip
def test_fnn_trains_start_line_names_numpy_when_numba_cannot_be_imported(
    failure, tmp_path, monkeypatch
):
    """The start line is printed before the first update, so ``describe`` tries the import."""
    from fnn.cli.training import describe
    from fnn.train import TrainConfig

    monkeypatch.delenv("FNN_FUSED", raising=False)
    assert describe(TrainConfig(), [784, 10]).endswith(f"updates fused (numba {numba.__version__})")
    (tmp_path / "numba").mkdir()
    (tmp_path / "numba" / "__init__.py").write_text(f"raise {failure}")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "numba")  # put back after the test
    assert describe(TrainConfig(), [784, 10]).endswith("updates numpy (numba cannot be imported)")
