"""Fashion-MNIST from local IDX files, and the two Fashion-MNIST tasks.

The files come from the Debian package ``dataset-fashion-mnist`` (installed by
``make install``) or from a directory named by ``AUTOPRUNE_FASHION_MNIST``.
Nothing is downloaded.

``fashion_cnn_task(train_size=1000)`` gives 1,000 training, 5,000 validation and
10,000 test images.

Example (reading a tiny IDX file):
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "tiny-labels-idx1-ubyte.gz"
    >>> _ = path.write_bytes(gzip.compress(struct.pack(">HBBI", 0, 8, 1, 3) + bytes([7, 8, 9])))
    >>> read_idx(path).tolist()
    [7, 8, 9]
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

from autoprune.errors import DataError
from autoprune.tasks._data import as_dataset, split_off, take
from autoprune.tasks._task import Task
from autoprune.tasks.models import FashionCNN, FashionResNet

ENV_VAR = "AUTOPRUNE_FASHION_MNIST"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MEAN, STD = 0.2860, 0.3530
VAL_SIZE = 5000


def candidate_dirs() -> list[Path]:
    """Where Fashion-MNIST is looked for, in order."""
    dirs = [Path(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else []
    return dirs + [DEBIAN_DIR]


def _find(stem: str) -> Path:
    for directory in candidate_dirs():
        for name in (stem + ".gz", stem):
            if (directory / name).is_file():
                return directory / name
    looked = ", ".join(str(d) for d in candidate_dirs())
    raise DataError(
        f"Fashion-MNIST file {stem}(.gz) not found (looked in {looked}). "
        "Install it with 'sudo apt-get install dataset-fashion-mnist' (or 'make install' as root), "
        f"or set {ENV_VAR} to a directory holding the IDX files."
    )


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
        shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    except (OSError, struct.error, EOFError) as exc:
        raise DataError(f"Cannot read IDX file {path}: {exc}") from exc
    if zero != 0 or dtype_code != 0x08:
        raise DataError(
            f"{path} is not an unsigned-byte IDX file (header {zero}, {dtype_code:#x})."
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise DataError(
            f"{path} is truncated: expected {int(np.prod(shape))} values, found {array.size}."
        )
    return array.reshape(shape)


@functools.lru_cache(maxsize=2)
def load_fashion_mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised images (N, 1, 28, 28) float32 and int64 labels of ``split`` ('train'/'test')."""
    images_stem, labels_stem = FILES[split]
    images = read_idx(_find(images_stem))
    labels = read_idx(_find(labels_stem))
    if len(images) != len(labels):
        raise DataError(f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels.")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = (x - MEAN) / STD
    return x, torch.from_numpy(labels.astype(np.int64))


def _fashion_splits(train_size: int | None, test_size: int | None, seed: int):
    train_full = as_dataset(load_fashion_mnist("train"), "train_data")
    train, val = split_off(train_full, VAL_SIZE, seed=seed)
    test = as_dataset(load_fashion_mnist("test"), "test_data")
    return take(train, train_size, seed=seed), val, take(test, test_size, seed=seed)


def _fashion_task(
    name: str, build_model, description: str, train_size, test_size, split_seed
) -> Task:
    train, val, test = _fashion_splits(train_size, test_size, split_seed)
    return Task(
        name=name,
        build_model=build_model,
        train_data=train,
        val_data=val,
        test_data=test,
        metric="accuracy",
        example_input=torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0)),
        epochs=5,
        lr=1e-3,
        batch_size=64,
        description=description,
    )


def fashion_cnn_task(
    *, train_size: int | None = None, test_size: int | None = None, split_seed: int = 0
) -> Task:
    """Fashion-MNIST with :class:`FashionCNN`; 55k train / 5k validation / 10k test."""
    return _fashion_task(
        "fashion-cnn",
        FashionCNN,
        "Fashion-MNIST with the classic CNN of the seed study",
        train_size,
        test_size,
        split_seed,
    )


def fashion_resnet_task(
    *, train_size: int | None = None, test_size: int | None = None, split_seed: int = 0
) -> Task:
    """Fashion-MNIST with :class:`FashionResNet`; 55k train / 5k validation / 10k test."""
    return _fashion_task(
        "fashion-resnet",
        FashionResNet,
        "Fashion-MNIST with a small ResNet (BatchNorm, residual additions)",
        train_size,
        test_size,
        split_seed,
    )
