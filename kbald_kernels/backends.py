"""Which implementation runs an op: the backend registry and its choice rules.

Each op has a reference ("torch") implementation; kernel modules register theirs
for "triton" or "cuda". "cuda" means the compiled extension: the CUDA kernel on
CUDA tensors and, for ops with a host C++ twin, that twin on CPU tensors.
``backend="auto"`` takes a kernel for CUDA tensors, the host twin where an op has
one for CPU tensors, and the reference otherwise; an explicit backend that cannot
run raises :class:`BackendUnavailableError` saying why.

A kernel that "auto" chose and that fails to compile or launch (a Triton
compilation error, out of shared memory or registers, a CUDA launch failure)
warns once with :class:`KernelFallbackWarning` and its op runs the reference for
the rest of the process. An explicit backend, a ``KBALD_BACKEND`` preference and
``KBALD_STRICT=1`` raise instead. Only failures to run fall back (see
:func:`is_kernel_failure`): bad input, exhausted memory and errors of a launcher's
own code are raised as they are.
"""

import functools
import importlib
import os
import re
import warnings
from typing import Callable, NamedTuple, Union

from . import reference

BACKENDS = ("auto", "triton", "cuda", "torch")
BACKEND_ENV = "KBALD_BACKEND"
STRICT_ENV = "KBALD_STRICT"

# A kernel is registered as "module:function" and imported on first use: importing
# kbald_kernels compiles no kernel and loads no Triton module of ours. (torch's
# compiler, which validation.py's decorator loads, imports triton itself, so
# TRITON_INTERPRET must be set before kbald_kernels is imported.)
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


class KernelFallbackWarning(RuntimeWarning):
    """A kernel chosen by backend="auto" failed to run; its op runs the reference from now on."""


# (op, device type) whose auto-chosen kernel failed in this process, with the warning given.
_FAILED: dict[tuple, str] = {}
# Arguments an op updates in place, by position: a kernel that fails after writing
# some of them (a greedy loop's later launches compile specialisations of their own)
# is retried on the reference from the copy taken before it ran. They are O(N)
# vectors beside the kernel's O(N·K·C) or O(N·D) pass.
_MUTATED = {"kbald_pairwise_steps": (2, 3), "add_triple_interactions": (4,), "kmeanspp_steps": (1, 2)}


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


def _host_twin_available():
    """Whether the host module loaded: :func:`_host_twin_status` without its message,
    for the dispatch that opens every call."""
    from . import native

    return not isinstance(native.host_module(), str)


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


def path_name(backend, device):
    """What a backend runs on ``device``, in words: "Triton", "CUDA", "host C++", "torch reference"."""
    if backend == "cuda":
        return "CUDA" if device.type == "cuda" else "host C++"
    return {"triton": "Triton", "torch": "torch reference"}[backend]


def strict_mode():
    """True when ``KBALD_STRICT`` asks that a failing kernel raise rather than fall back."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def fallbacks():
    """{(op, device type): warning} of the ops whose kernel failed in this process and
    now run the reference on that device type."""
    return dict(_FAILED)


def _auto_choice(op, device):
    impls = _REGISTRY[op]
    if (op, device.type) in _FAILED:
        return "torch"
    if device.type == "cuda":
        for candidate in ("triton", "cuda"):
            if candidate in impls and _status(candidate, device, op).available:
                return candidate
    elif op in _HOST_TWINS and "cuda" in impls and _host_twin_available():
        return "cuda"
    return "torch"


def _choose(op, backend, device, strict):
    """(backend name, whether "auto" chose it); see choose_backend."""
    name, from_env = _requested(backend)
    impls = _REGISTRY[op]
    if name == "auto" or ((from_env or not strict) and name not in impls):
        return _auto_choice(op, device), True
    if name not in impls:
        raise BackendUnavailableError(
            f"backend={name!r} has no kernel for {op}; use backend='auto' or 'torch' "
            f"(ops with {name} kernels: {', '.join(ops_with_kernels(name)) or 'none yet'})")
    if name != "torch":
        status = _status(name, device, op)
        if not status.available:
            raise BackendUnavailableError(f"backend={name!r} cannot run {op}: {status.reason}")
    return name, False


def choose_backend(op, backend, device, strict=True):
    """The backend that runs ``op`` on tensors on ``device``; see the module docstring.

    A preference that has no kernel for this op falls back to "auto" when it comes
    from ``KBALD_BACKEND`` or when ``strict`` is False (acquisitions, which chain
    several ops), so a preference for one backend never breaks the others' ops.
    """
    return _choose(op, backend, device, strict)[0]


def _resolved(op, name):
    fn = _REGISTRY[op][name]
    if isinstance(fn, str):
        module, attr = fn.split(":")
        fn = _REGISTRY[op][name] = getattr(importlib.import_module(module), attr)
    return fn


def implementation(op, backend, device, strict=True):
    """The function that runs ``op`` for ``backend`` on ``device`` (``strict``: see choose_backend).

    A kernel "auto" chose comes guarded: if it fails to run, it warns once and the
    op runs the reference (see the module docstring) unless ``KBALD_STRICT`` is set.
    """
    name, by_auto = _choose(op, backend, device, strict)
    if name == "torch" or not by_auto or strict_mode():
        return _resolved(op, name)
    return functools.partial(_guarded_call, op, name, device)


def is_kernel_failure(exc):
    """Whether ``exc`` is a kernel failing to compile, load or launch: Triton's own
    errors, a CUDA error (torch's, the driver's through Triton, or the CUDA module's),
    a kernel module that cannot be imported. Bad input, exhausted memory and other
    errors of the launcher's own code are not: no other backend would cure them, and
    a bug must not hide behind a warning."""
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError, BackendUnavailableError)):
        return False
    if type(exc).__module__.split(".")[0] == "triton" or isinstance(exc, ImportError):
        return True
    accelerator_error = getattr(torch, "AcceleratorError", ())
    return isinstance(exc, accelerator_error) or (type(exc) is RuntimeError and "CUDA" in str(exc))


def _kernel_name(exc):
    """The @triton.jit kernel the failure came from, if its traceback or its source says."""
    tb, name = exc.__traceback__, None
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        fn = getattr(owner, "fn", owner)
        if type(fn).__name__ in ("JITFunction", "InterpretedFunction"):
            name = getattr(fn, "__name__", name)
        tb = tb.tb_next
    found = re.search(r"def (\w+)\(", str(getattr(exc, "src", "") or ""))
    return name or (found.group(1) if found else None)


def _summary(exc):
    """The error's first and last lines (a compilation error puts the cause last)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return type(exc).__name__ + ": " + (lines[0] if len(lines) == 1 else f"{lines[0]} … {lines[-1]}")


def _guarded_call(op, name, device, *args):
    if (op, device.type) in _FAILED:  # a caller that kept this function from before the failure
        return _resolved(op, "torch")(*args)
    saved = {i: args[i].clone() for i in _MUTATED.get(op, ())}
    try:
        return _resolved(op, name)(*args)
    except Exception as exc:
        if not is_kernel_failure(exc):
            raise
        entry = _REGISTRY[op][name]
        launcher = entry if isinstance(entry, str) else (
            f"{getattr(entry, '__module__', '')}.{getattr(entry, '__qualname__', entry)}")
        jit = _kernel_name(exc)
        message = (f"kbald_kernels: the {path_name(name, device)} kernel of {op} ({jit + ' via ' if jit else ''}"
                   f"{launcher}) failed on {device}: {_summary(exc)}; {op} runs the torch reference "
                   f"for the rest of this process. `kbald check --device {device.type}` shows what runs on this "
                   f"machine; {STRICT_ENV}=1 raises instead.")
        _FAILED[(op, device.type)] = message
        warnings.warn(message, KernelFallbackWarning, stacklevel=2)
        for i, value in saved.items():
            args[i].copy_(value)
        return _resolved(op, "torch")(*args)
