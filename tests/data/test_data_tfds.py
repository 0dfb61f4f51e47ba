"""tensorflow-datasets for real: ``prepare_tfds`` builds TFDS copies of MNIST and Fashion-MNIST
from the real IDX files, offline, both into one TFDS folder; each copy holds exactly its IDX
files' images and labels (in another order), ``fnn train --source tfds`` trains on it, and
``data_dir`` and ``TFDS_DATA_DIR`` are honoured. Files of the other data set, a missing copy
and a missing package are one line each."""

from __future__ import annotations

import importlib.util
import re
import sys

import numpy as np
import pytest
from conftest import real_data_dir
from data_support import assert_one_line

from fnn import data
from fnn.cli import main
from fnn.data import download

HAVE_TF = all(importlib.util.find_spec(m) for m in ("tensorflow", "tensorflow_datasets"))
needs_tf = pytest.mark.skipif(
    not HAVE_TF, reason="preparing tfds needs TensorFlow: pip install 'fnn[tfds-prepare]'"
)
needs_data = pytest.mark.skipif(
    real_data_dir() is None, reason="real MNIST/Fashion-MNIST files not found (FNN_DATA_DIR)"
)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict:
    """Both data sets prepared into one TFDS folder, from the real IDX files; the lines said."""
    root, lines = tmp_path_factory.mktemp("tfds"), []
    for name in ("mnist", "fashion_mnist"):
        data.prepare_tfds(name, root, real_data_dir(), say=lines.append)
    return {"root": root, "lines": lines}


def as_multiset(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The (label, image) pairs as sorted rows: equal for the same data in any order."""
    rows = np.concatenate([labels[:, None].astype(np.uint8), images.reshape(len(labels), -1)], 1)
    return rows[np.lexsort(rows.T[::-1])]


@needs_tf
@needs_data
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_a_prepared_copy_holds_exactly_the_idx_data(prepared, name):
    # both data sets sit in one TFDS folder: each still gives its own images (TFDS would reuse
    # one extraction for both, had they been staged together)
    idx = data.load(name, data_dir=real_data_dir(), download=False)
    tfds = data.load(name, source="tfds", data_dir=prepared["root"], download=False)
    for (x_idx, y_idx), (x_tfds, y_tfds) in zip(idx, tfds, strict=True):
        assert x_tfds.shape == x_idx.shape and x_tfds.dtype == np.uint8
        np.testing.assert_array_equal(as_multiset(x_tfds, y_tfds), as_multiset(x_idx, y_idx))
        assert not np.array_equal(y_tfds, y_idx)  # TFDS shuffled the order while preparing
    (line,) = [line for line in prepared["lines"] if f"tfds {name} " in line]
    assert re.fullmatch(rf"prepared tfds {name} \S+ in \S+: 60,000 train and 10,000 test "
                        r"records from \S+ \(\d+ s\)", line), line  # fmt: skip


@needs_tf
@needs_data
def test_fnn_train_trains_on_the_tfds_copy(prepared, capsys):
    argv = ["train", "--source", "tfds", "--data_dir", str(prepared["root"]), "--epochs", "1",
            "--train_subset", "6000", "--tracker", "none"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", out)[1])
    assert accuracy > 70, out  # one epoch on 5,400 Fashion-MNIST images


@needs_tf
@needs_data
def test_the_tfds_folder_comes_from_the_environment_after_import(prepared, monkeypatch):
    import tensorflow_datasets  # noqa: F401 - imported before the variable is set

    monkeypatch.setenv("TFDS_DATA_DIR", str(prepared["root"]))
    (_, y_train), _ = data.load("mnist", source="tfds", download=False)
    assert np.bincount(y_train).tolist()[:3] == [5923, 6742, 5958]  # MNIST's train counts


@needs_tf
@needs_data
def test_prepare_tfds_keeps_a_prepared_copy(prepared, capsys):
    argv = ["prepare-tfds", "mnist", "--data_dir", str(prepared["root"]), "--files",
            str(real_data_dir())]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out.strip()
    assert re.fullmatch(rf"tfds mnist \S+ is already prepared in {prepared['root']}/\S+; kept", out)


@needs_tf
def test_a_folder_without_a_prepared_copy_is_one_line_and_nothing_downloads(tmp_path):
    with pytest.raises(data.DataError) as error:  # download=True, as fnn train loads
        data.load("mnist", source="tfds", data_dir=tmp_path / "tfds")
    assert_one_line(error, f"no readable tfds copy of mnist/train in {tmp_path / 'tfds'}",
                    f"fnn prepare-tfds mnist --data_dir {tmp_path / 'tfds'}")  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # no downloads/ or mnist/ folder made


def test_missing_idx_files_say_where_to_point_prepare_tfds(tmp_path, monkeypatch):
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(download, "SYSTEM_DIR", tmp_path / "system")
    with pytest.raises(data.DataError) as error:
        data.prepare_tfds("mnist", tmp_path / "tfds", tmp_path / "nothing")
    assert_one_line(error, f"mnist: its four IDX files are not in {tmp_path / 'nothing'}",
                    "`fnn prepare-tfds --files DIR`")  # fmt: skip


@needs_data
def test_files_of_the_other_data_set_are_refused_in_one_line(tmp_path):
    # Fashion-MNIST's files under MNIST's names: the trap of one folder for both data sets
    (tmp_path / "mnist").symlink_to(real_data_dir() / "fashion-mnist")
    with pytest.raises(data.DataError) as error:
        data.prepare_tfds("mnist", tmp_path / "tfds", tmp_path)
    assert_one_line(error, "is neither the canonical download of mnist's",
                    "refusing to prepare tfds mnist")  # fmt: skip
    assert not (tmp_path / "tfds").exists()  # refused before anything was written


@needs_data
def test_a_missing_package_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if not installed
    with pytest.raises(data.DataError) as error:
        data.prepare_tfds("fashion_mnist", tmp_path, real_data_dir())
    assert_one_line(error, "tensorflow", "pip install 'fnn[tfds-prepare]'")
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(data.DataError) as error:
        data.load("mnist", source="tfds", data_dir=tmp_path)
    assert_one_line(error, "tensorflow_datasets", "pip install 'fnn[tfds]'")
