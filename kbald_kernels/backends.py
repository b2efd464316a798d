"""Which implementation runs an op: the backend registry and its choice rules.

Each op has a reference ("torch") implementation; kernel modules register theirs
for "triton" or "cuda". "cuda" means the compiled extension: the CUDA kernel on
CUDA tensors and, for ops with a host C++ twin, that twin on CPU tensors.
``backend="auto"`` takes a kernel for CUDA tensors, the host twin where an op has
one for CPU tensors, and the reference otherwise; an explicit backend that cannot
run raises :class:`BackendUnavailableError` saying why.
"""

import importlib
import os
from typing import Callable, NamedTuple, Union

from . import reference

BACKENDS = ("auto", "triton", "cuda", "torch")
BACKEND_ENV = "KBALD_BACKEND"

# A kernel is registered as "module:function" and imported on first use, so that
# importing kbald_kernels never imports triton (TRITON_INTERPRET must be set first).
_REGISTRY: dict[str, dict[str, Union[Callable, str]]] = {
    op: {"torch": getattr(reference, op)}
    for op in (
        "entropies",
        "uncertainties",
        "pairwise_mutual_information",
        "epig",
        "triple_interaction",
        "joint_entropy",
        "accumulate_joint_entropy",
        "kbald_pairwise_steps",
        "mutual_information_with_pick",
        "add_triple_interactions",
        "kmeanspp_steps",
        "min_squared_distances",
    )
}
_REGISTRY["entropies"]["triton"] = "kbald_kernels.triton.information_terms:entropies"
_REGISTRY["uncertainties"]["triton"] = "kbald_kernels.triton.information_terms:uncertainties"
_REGISTRY["pairwise_mutual_information"]["triton"] = (
    "kbald_kernels.triton.pairwise_mutual_information:pairwise_mutual_information")
_REGISTRY["epig"]["triton"] = "kbald_kernels.triton.epig:epig"
_REGISTRY["kbald_pairwise_steps"]["triton"] = "kbald_kernels.triton.kbald_step:kbald_pairwise_steps"
_REGISTRY["mutual_information_with_pick"]["triton"] = (
    "kbald_kernels.triton.kbald_step:mutual_information_with_pick")
_REGISTRY["add_triple_interactions"]["triton"] = "kbald_kernels.triton.kbald_step:add_triple_interactions"
for _op in ("joint_entropy", "accumulate_joint_entropy", "entropies", "uncertainties", "kbald_pairwise_steps",
            "mutual_information_with_pick", "add_triple_interactions", "epig", "kmeanspp_steps",
            "pairwise_mutual_information", "min_squared_distances"):
    _REGISTRY[_op]["cuda"] = f"kbald_kernels.native:{_op}"
_REGISTRY["kmeanspp_steps"]["triton"] = "kbald_kernels.triton.kmeanspp_step:kmeanspp_steps"
_REGISTRY["min_squared_distances"]["triton"] = "kbald_kernels.triton.kmeanspp_step:min_squared_distances"


# Ops whose "cuda" implementation also runs CPU tensors, on the host C++ twin.
_HOST_TWINS = frozenset({"joint_entropy", "accumulate_joint_entropy", "entropies", "uncertainties",
                         "kbald_pairwise_steps", "mutual_information_with_pick", "add_triple_interactions", "epig",
                         "kmeanspp_steps", "pairwise_mutual_information", "min_squared_distances"})
# Of those, the ones whose GPU kernel is Triton: "cuda" runs them on CPU tensors only.
_HOST_ONLY_TWINS = frozenset({"entropies", "uncertainties", "kbald_pairwise_steps", "mutual_information_with_pick",
                              "add_triple_interactions", "epig", "kmeanspp_steps", "pairwise_mutual_information",
                              "min_squared_distances"})


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot run this op on this input."""


class BackendStatus(NamedTuple):
    available: bool
    reason: str


def register(op, backend, fn):
    """Make ``fn`` the ``backend`` implementation of ``op`` (called by kernel modules)."""
    if backend not in ("triton", "cuda"):
        raise ValueError(f"kernels register for 'triton' or 'cuda', not {backend!r}")
    _REGISTRY[op][backend] = fn


def ops_with_kernels(backend):
    return sorted(op for op, impls in _REGISTRY.items() if backend in impls)


def triton_interpreter_enabled():
    return os.environ.get("TRITON_INTERPRET", "") == "1"


def _triton_status(device=None):
    try:
        import triton
    except ImportError as exc:
        return BackendStatus(False, f"triton is not installed ({exc})")
    if device is not None and device.type == "cpu" and not triton_interpreter_enabled():
        return BackendStatus(False, "CPU tensors need TRITON_INTERPRET=1 (set before triton is imported)")
    if device is None and not triton_interpreter_enabled():
        import torch

        if not torch.cuda.is_available():
            return BackendStatus(False, f"triton {triton.__version__} installed, but no CUDA device and "
                                        "TRITON_INTERPRET is not 1")
    where = "CUDA tensors" if device is None or device.type == "cuda" else "CPU tensors (interpreter)"
    return BackendStatus(True, f"triton {triton.__version__} on {where}")


def _host_twin_status():
    from . import native

    module = native.host_module()
    if isinstance(module, str):
        return BackendStatus(False, module)
    return BackendStatus(True, f"host C++ twin ({module.openmp_threads()} OpenMP threads)")


def _cuda_status(device=None, op=None):
    from . import native

    if device is not None and device.type == "cpu" and op in _HOST_TWINS:
        return _host_twin_status()
    if device is not None and op in _HOST_ONLY_TWINS:
        return BackendStatus(False, f"{op} has no CUDA C++ kernel (on {device.type} tensors it is a Triton "
                                    "kernel); backend 'cuda' runs its host twin on CPU tensors")
    module = native.cuda_module()
    if isinstance(module, str):
        return BackendStatus(False, module)
    if device is not None and device.type != "cuda":
        return BackendStatus(False, f"the CUDA kernels need CUDA tensors, got {device.type} tensors")
    try:
        count = module.device_count()
    except RuntimeError as exc:
        return BackendStatus(False, f"CUDA module built for sm_{module.architectures}, but {exc}")
    if count == 0:
        return BackendStatus(False, "CUDA module built, but no CUDA device is visible")
    return BackendStatus(True, f"CUDA module for sm_{module.architectures} on {count} device(s)")


def available_backends():
    """What each backend can do on this machine, and why not where it cannot.

    Returns ``{name: BackendStatus(available, reason)}`` for "torch", "triton" and
    "cuda"; the reason also lists the ops that have a kernel in that backend.
    """
    out = {"torch": BackendStatus(True, "reference implementations of every op (CPU and CUDA tensors)")}
    for name, status in (("triton", _triton_status()), ("cuda", _cuda_status())):
        ops = ops_with_kernels(name)
        kernels = f"; kernels: {', '.join(ops)}" if ops else "; no op has a kernel here yet"
        out[name] = BackendStatus(status.available and bool(ops), status.reason + kernels)
    twin = _host_twin_status()
    twins = ", ".join(sorted(_HOST_TWINS))
    out["cuda"] = BackendStatus(out["cuda"].available, out["cuda"].reason + (
        f"; CPU tensors: {twin.reason} for {twins}" if twin.available else f"; no host twin: {twin.reason}"))
    return out


def _requested(backend):
    if backend is not None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
        return backend, False
    name = os.environ.get(BACKEND_ENV, "auto").strip() or "auto"
    if name not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV} must be one of {', '.join(BACKENDS)}, got {name!r}")
    return name, True


def _status(name, device, op):
    return _triton_status(device) if name == "triton" else _cuda_status(device, op)


def choose_backend(op, backend, device, strict=True):
    """The backend that runs ``op`` on tensors on ``device``; see the module docstring.

    A preference that has no kernel for this op falls back to "auto" when it comes
    from ``KBALD_BACKEND`` or when ``strict`` is False (acquisitions, which chain
    several ops), so a preference for one backend never breaks the others' ops.
    """
    name, from_env = _requested(backend)
    impls = _REGISTRY[op]
    if name == "auto" or ((from_env or not strict) and name not in impls):
        if device.type == "cuda":
            for candidate in ("triton", "cuda"):
                if candidate in impls and _status(candidate, device, op).available:
                    return candidate
        elif op in _HOST_TWINS and "cuda" in impls and _host_twin_status().available:
            return "cuda"
        return "torch"
    if name not in impls:
        raise BackendUnavailableError(
            f"backend={name!r} has no kernel for {op}; use backend='auto' or 'torch' "
            f"(ops with {name} kernels: {', '.join(ops_with_kernels(name)) or 'none yet'})")
    if name != "torch":
        status = _status(name, device, op)
        if not status.available:
            raise BackendUnavailableError(f"backend={name!r} cannot run {op}: {status.reason}")
    return name


def implementation(op, backend, device, strict=True):
    """The function that runs ``op`` for ``backend`` on ``device`` (``strict``: see choose_backend)."""
    name = choose_backend(op, backend, device, strict)
    fn = _REGISTRY[op][name]
    if isinstance(fn, str):
        module, attr = fn.split(":")
        fn = _REGISTRY[op][name] = getattr(importlib.import_module(module), attr)
    return fn
