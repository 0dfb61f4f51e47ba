import json
import re
import sys

import numpy as np
import pytest

from fnn import bench
from fnn.cli import main

TINY = ["--sizes", "20,8,4", "--batch_sizes", "16,64", "--samples", "200", "--repeats", "1"]


def test_flops_per_sample_of_the_reference_workload():
    # forward 2*134,400 + weight gradients 2*134,400 + hidden-input gradients 2*34,048
    assert bench.flops_per_sample([784, 128, 128, 128, 10]) == 605_696
    assert bench.flops_per_sample([5, 3]) == 2 * 2 * 15  # no hidden input to differentiate


def test_run_returns_a_row_per_batch_size():
    result = bench.run([20, 8, 4], batch_sizes=[16, 64], samples=200, repeats=2, dataset=None)
    json.dumps(result)
    assert result["data"] == "synthetic" and result["roofline_gflops"] > 0
    assert [row["batch_size"] for row in result["rows"]] == [16, 64]
    for row in result["rows"]:
        assert row["epoch_min"] <= row["epoch_seconds"] <= row["epoch_max"]
        assert row["samples_per_second"] == pytest.approx(200 / row["epoch_seconds"])
        assert row["steps_per_second"] == pytest.approx(
            -(-200 // row["batch_size"]) / row["epoch_seconds"]
        )
        assert (
            0 < row["roofline_fraction"] == pytest.approx(row["gflops"] / result["roofline_gflops"])
        )


def test_cli_table_json_and_plot(tmp_path, capsys):
    assert main(["bench", *TINY, "--dataset", "synthetic", "--plot", str(tmp_path / "b.png")]) == 0
    out = capsys.readouterr().out
    assert "roof" in out and "GFLOP/s" in out and "16" in out
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["bench", *TINY, "--dataset", "synthetic", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["rows"]) == 2
    # each BLAS with its threads, and the package that ships it when pip installed it
    assert re.fullmatch(r"\w+ \d+ threads( \(\w+\))?(, \w+ \d+ threads( \(\w+\))?)*",
                        result["blas"]), result["blas"]  # fmt: skip


@pytest.mark.parametrize(
    "path, package",
    [
        ("/venv/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_-32a4b2a6.so", "numpy"),
        ("/srv/site-packages/proj/.venv/lib/python3.12/site-packages/scipy.libs/x.so", "scipy"),
        ("/usr/lib/python3/dist-packages/numpy/core/libopenblas.so", "numpy"),
        ("/home/u/.local/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so", "torch"),
        ("/usr/lib/x86_64-linux-gnu/libopenblas.so.0", None),
        ("/opt/conda/lib/libmkl_rt.so.2", None),
        (None, None),
    ],
)
def test_package_of_names_the_installed_package_a_library_comes_with(path, package):
    assert bench.package_of(path) == package


def test_vs_jax_and_torch_report_ratios_and_the_gemm_floor(capsys):
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    pytest.importorskip("torch")
    assert main(["bench", *TINY, "--dataset", "synthetic", "--vs", "jax,torch", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["jax"] and result["torch"]
    for row in result["rows"]:
        for peer in ("jax", "torch", "gemm"):
            assert row[f"ratio_to_{peer}"] == pytest.approx(
                row["epoch_seconds"] / row[f"{peer}_epoch_seconds"]
            )


def test_jax_epoch_trains_the_same_network():
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    x = np.random.default_rng(0).random((64, 20), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 4, 64)
    for optimizer in ("sgd", "momentum", "nag", "rmsprop", "adam", "nadam"):
        epoch = bench.jax_epoch([20, 8, 4], activation="tanh", optimizer=optimizer,
                                learning_rate=1e-2, dtype="float32")  # fmt: skip
        epoch(x, y, 16)
    assert bench.jax_epoch([20, 4], activation="tanh", optimizer="eve", learning_rate=1e-2,
                           dtype="float32") is None  # fmt: skip


def test_without_jax_one_line_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jax", None)  # import jax now raises ImportError
    assert main(["bench", *TINY, "--dataset", "synthetic", "--vs", "jax"]) == 0
    out = capsys.readouterr().out
    assert 'jax: not installed (pip install "jax[cpu]" optax)' in out.replace("\n", " ")


def test_vs_torch_reports_a_ratio(capsys):
    pytest.importorskip("torch")
    assert main(["bench", *TINY, "--dataset", "synthetic", "--vs", "torch", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert all(row["ratio_to_torch"] > 0 for row in rows)


@pytest.mark.parametrize(
    "args",
    [
        ["--batch_sizes", "0"],
        ["--batch_sizes", "a"],
        ["--vs", "mxnet"],
        ["--vs", ","],
        ["--dtype", "int8"],
    ],  # fmt: skip
)
def test_bad_input(args, capsys):
    assert main(["bench", *args]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_extra_peers_are_timed_interleaved_with_a_ratio():
    calls = []

    def peer(x, y, batch_size):
        calls.append((len(x), batch_size))

    result = bench.run([20, 8, 4], batch_sizes=[16], samples=160, repeats=2, dataset=None,
                       floor=False, extra_peers={"mine": peer})  # fmt: skip
    row = result["rows"][0]
    assert calls == [(160, 16)] * 3  # the warm-up (20 batches cover all 160), then 2 repeats
    assert row["ratio_to_mine"] == row["epoch_seconds"] / row["mine_epoch_seconds"]
    assert "gemm_epoch_seconds" not in row
