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


def prune_wide_float32(stages, pool):
    """``early_config_prune`` keeping only the pipeline depths ``stages`` for WIDE tiles
    (classes in blocks) of a float32 ``pool`` argument, where ptxas spilled at the
    others (python_tests/compile_triton_kernels.py, which compiles what this keeps)."""
    def prune(configs, named_args, **kwargs):
        if not kwargs.get("WIDE") or named_args[pool].dtype != torch.float32:
            return configs
        kept = [config for config in configs if config.num_stages in stages]
        return kept or configs  # the interpreter's single config has no pipeline
    return prune
