"""What every Triton launcher shares."""

import contextlib

import torch


def on_device(device):
    """Launch on ``device`` (its current stream), not on whatever device is current."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
