"""Loading of the compiled modules (with the reason when one is missing), and
the arguments through which they read a pool as stored."""

import functools


@functools.lru_cache(maxsize=None)
def host_module():
    """``kbald_kernels._host``, or a string saying why it cannot be imported."""
    try:
        from .. import _host
    except ImportError as exc:
        return f"host C++ module not built ({exc}); reinstall with `pip install -e .`"
    return _host


@functools.lru_cache(maxsize=None)
def cuda_module():
    """``kbald_kernels._cuda``, or a string saying why it cannot be imported."""
    try:
        from .. import _cuda
    except ImportError as exc:
        return (f"CUDA module not built ({exc}); install where nvcc is found, "
                "or with KBALD_FORCE_CUDA=1 to make a missing nvcc an error")
    return _cuda


def row_entropy(probs):
    """Entropy of each row of a [rows, cols] probability tensor through the compiled modules.

    CPU tensors run the host C++ module, CUDA tensors the CUDA module on the
    tensor's device and current stream. Both share ``csrc/include/kbald/entropy_math.h``.
    """
    import torch

    if not isinstance(probs, torch.Tensor) or probs.dim() != 2:
        raise ValueError("probs must be a 2-D torch.Tensor [rows, cols]")
    if probs.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"probs must be float32 or float64, got {probs.dtype}")
    probs = probs.contiguous()
    out = torch.empty(probs.shape[0], dtype=probs.dtype, device=probs.device)
    dtype = "float64" if probs.dtype == torch.float64 else "float32"
    if probs.device.type == "cpu":
        module = host_module()
        if isinstance(module, str):
            raise RuntimeError(module)
        module.row_entropy(probs.data_ptr(), out.data_ptr(), probs.shape[0], probs.shape[1], dtype)
    elif probs.device.type == "cuda":
        module = cuda_module()
        if isinstance(module, str):
            raise RuntimeError(module)
        with torch.cuda.device(probs.device):
            stream = torch.cuda.current_stream(probs.device).cuda_stream
            module.row_entropy(probs.data_ptr(), out.data_ptr(), probs.shape[0], probs.shape[1], dtype, stream)
    else:
        raise ValueError(f"probs must be on a CPU or CUDA device, got {probs.device}")
    return out


def module_for(device):
    module = host_module() if device.type == "cpu" else cuda_module()
    if isinstance(module, str):
        raise RuntimeError(module)
    return module


# Type codes of kbald/log_probs.h: the compiled modules read the pool as stored.
POOL_TYPES = {"torch.float32": 0, "torch.float16": 1, "torch.bfloat16": 2}


def pool_arguments(log_probs):
    """(pointer, type code, element strides n, k, c): a [N, K, C] pool as the compiled
    modules take it, with no converted or contiguous copy."""
    return (log_probs.data_ptr(), POOL_TYPES[str(log_probs.dtype)], *log_probs.stride())


def takes_pair_pass(log_probs, op):
    """Whether the host pair pass of ``op`` takes this pool (else the reference does)."""
    if log_probs.device.type != "cpu":
        raise ValueError(f"the host twin of {op} takes CPU tensors, got {log_probs.device}")
    import torch

    return log_probs.dtype != torch.float64
