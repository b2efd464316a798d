"""Reading predictions and embeddings from the files users have: .npy, .npz, .pt, .safetensors."""

from pathlib import Path

import numpy as np
import torch

SUFFIXES = (".npy", ".npz", ".pt", ".pth", ".safetensors")


def load_arrays(path):
    """{name: torch.Tensor} from a file; a single .npy array or .pt tensor is named "array"."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}")
    if suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ValueError(f"{path}: reading .safetensors needs the safetensors package "
                             "(pip install safetensors)") from None
    try:
        if suffix == ".npy":
            return {"array": torch.from_numpy(np.load(path, allow_pickle=False))}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {name: torch.from_numpy(data[name]) for name in data.files}
        if suffix == ".safetensors":
            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file: say so in one line
        raise ValueError(f"{path}: cannot read it as {suffix} ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, torch.Tensor):
        return {"array": obj}
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj)
    raise ValueError(f"{path}: expected a tensor or a dict of tensors, got {type(obj).__name__}")


def shard_rows(total, rank, world):
    """This rank's contiguous slice of ``total`` rows split over ``world`` ranks in
    order, the first ``total % world`` ranks one row longer."""
    base, extra = divmod(total, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def load_shard(path, rank, world):
    """{name: this rank's rows} of a file (:func:`shard_rows` of its first axis): a
    ``.npy`` is memory-mapped, so only those rows are read; other formats are read
    whole, then sliced."""
    path = Path(path)
    if path.suffix.lower() == ".npy" and path.is_file():
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"{path}: cannot read it as .npy ({type(exc).__name__}: {exc})") from None
        if array.ndim == 0:
            raise ValueError(f"{path}: a scalar, not an array of pool points")
        return {"array": torch.from_numpy(np.ascontiguousarray(array[shard_rows(len(array), rank, world)]))}
    arrays = load_arrays(path)
    return {name: a[shard_rows(a.shape[0], rank, world)] for name, a in arrays.items()}


def pick(arrays, path, key=None):
    """The one array of a file, or the one named ``key``."""
    if key is not None:
        if key not in arrays:
            raise ValueError(f"{path}: no array named {key!r}; it has {', '.join(sorted(arrays))}")
        return arrays[key]
    if len(arrays) != 1:
        raise ValueError(f"{path} holds several arrays ({', '.join(sorted(arrays))}); choose one with --key")
    return next(iter(arrays.values()))


def embeddings_from(arrays, path, key=None):
    """Dense embeddings, or BADGE factors from "features" + "residuals" or "features" + "logits"."""
    if key is None and "features" in arrays and ("residuals" in arrays or "logits" in arrays):
        if "residuals" in arrays:
            return arrays["features"], arrays["residuals"]
        from .acquisition.kmeanspp import badge_factors

        return badge_factors(arrays["logits"], arrays["features"])
    return pick(arrays, path, key)
