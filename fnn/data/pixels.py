"""Images to model inputs: uint8 pixels to flat float rows in [0, 1] (optionally shrunk by area
averaging), and per-channel standardisation with the training split's statistics.
"""

from __future__ import annotations

import numpy as np
from einops import rearrange


def preprocess(images: np.ndarray, dtype=np.float32, *, size: int | None = None) -> np.ndarray:
    """uint8 images ``(N, H, W)`` or ``(N, H, W, C)`` -> flat ``(N, H*W*C)`` rows of ``dtype``
    in [0, 1] (x / 255), pixel-major with the channels innermost. With ``size`` the images are
    first shrunk to ``size x size`` by area averaging: each output pixel is the mean of one
    ``H/size x W/size`` block (``size`` must divide H and W)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a float type (float32 or float64), got {dtype}")
    if images.ndim not in (3, 4) or images.dtype != np.uint8:
        raise ValueError(
            "images must be uint8 of shape (N, height, width) or (N, height, width, channels), "
            f"got {images.dtype} {images.shape}"
        )
    if images.ndim == 3:
        images = images[..., np.newaxis]
    height, width = images.shape[1:3]
    if size is not None:
        if not (isinstance(size, int) and size >= 1 and height % size == 0 and width % size == 0):
            raise ValueError(f"size must divide the image sides {height} and {width}; got {size}")
        blocks = rearrange(images, "n (h a) (w b) c -> n h w c (a b)", h=size, w=size).astype(
            np.float64
        )
        flat = rearrange(blocks.mean(axis=-1), "n h w c -> n (h w c)").astype(dtype)
    else:
        flat = rearrange(images, "n h w c -> n (h w c)").astype(dtype)
    flat /= dtype.type(255)
    return flat


def standardise(x_train: np.ndarray, *others: np.ndarray, channels: int) -> tuple[np.ndarray, ...]:
    """Per-channel standardisation with the mean and standard deviation of ``x_train`` (flat
    rows, channels innermost), applied to ``x_train`` and every array of ``others``."""
    pixels = x_train.reshape(-1, channels).astype(np.float64)
    mean, std = pixels.mean(axis=0), pixels.std(axis=0)
    std[std == 0] = 1.0
    scale = np.tile(1.0 / std, x_train.shape[1] // channels).astype(x_train.dtype)
    shift = np.tile(mean, x_train.shape[1] // channels).astype(x_train.dtype)
    return tuple((x - shift) * scale for x in (x_train, *others))
