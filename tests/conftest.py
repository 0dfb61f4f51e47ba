"""Shared fixtures: the real data sets when they are on this machine (skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def real_data_dir() -> Path | None:
    """``$FNN_DATA_DIR`` or ``../shared/datasets`` beside the checkout, if it holds the files."""
    candidates = [os.environ.get("FNN_DATA_DIR"), REPO.parent / "shared" / "datasets"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").exists():
            return Path(candidate)
    return None


@pytest.fixture
def data_dir() -> Path:
    found = real_data_dir()
    if found is None:
        pytest.skip("real MNIST/Fashion-MNIST files not found (set FNN_DATA_DIR)")
    return found


@pytest.fixture(autouse=True)
def _quiet_wandb(tmp_path, monkeypatch):
    """No test tracks to W&B unless it asks to, and none writes runs into the checkout."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """W&B as a user without an account sees it: no key, no WANDB_MODE; runs land in tmp."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "home" / ".config" / "wandb"))
    from fnn import tracking

    monkeypatch.setattr(tracking, "_announced", [])  # each test sees the offline notice
    return tmp_path
