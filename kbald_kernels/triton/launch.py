"""What every Triton launcher shares."""

import contextlib
import os

import torch
import triton


def on_device(device):
    """Launch on ``device`` (its current stream), not on whatever device is current."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def warp_configs(warps=(4, 8)):
    """Autotuning choices for a kernel whose tile shape is fixed: warps and pipeline
    depth. The interpreter gets one, since it has neither."""
    if os.environ.get("TRITON_INTERPRET", "") == "1":
        return [triton.Config({}, num_warps=warps[0])]
    return [triton.Config({}, num_warps=w, num_stages=s) for w in warps for s in (2, 3)]
