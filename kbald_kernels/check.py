"""``kbald check``: every op on every backend this machine can run, against the
float64 reference, before any real work.

Each row is one op on one backend at one shape: the path that actually ran
(host C++, Triton natively or under the interpreter, CUDA), the largest error
against the reference as a fraction of the op's tolerance, whether the greedy
picks (and the values that go with them) equal the reference's on the same float32
input, and the time of a warm call. The run ends with the machine (device, compute capability, torch, triton,
CUDA runtime and driver, the compiled modules) and exits 1 on any mismatch,
error, or a kernel backend that handed the op to the reference.

Every row names its backend, so a kernel that fails raises and is reported here
rather than falling back. On CUDA tensors a registered kernel that cannot run at
all (the CUDA module not built, triton missing) is a failing row too.
"""

import math
import os
import platform
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, NamedTuple, Optional

# Tolerances of float32 kernels against the float64 reference: (atol, rtol).
VALUES_TOLERANCE = (2e-4, 1e-4)
# Triple interactions sum seven entropies, and k-means++ distances are squared norms of
# unnormalised rows: both lose more to float32 rounding.
LOOSE_TOLERANCE = (1e-3, 1e-4)
DISTANCE_TOLERANCE = (1e-2, 1e-4)


class Shape(NamedTuple):
    label: str
    n: int
    k: int
    c: int


def shapes(device_type, interpret, quick):
    """Pools to check: a small odd one, a medium one, and (without ``quick``) one
    whose classes take the kernels' class blocks. The interpreter gets tiny ones."""
    if interpret:
        found = [Shape("odd", 37, 5, 3), Shape("medium", 200, 8, 10), Shape("wide C", 17, 3, 257)]
    elif device_type == "cuda":
        found = [Shape("odd", 1_237, 7, 3), Shape("P1", 60_000, 100, 10), Shape("wide C", 2_000, 10, 1_000)]
    else:
        found = [Shape("odd", 1_237, 7, 3), Shape("medium", 6_000, 20, 10), Shape("wide C", 200, 5, 257)]
    return found[:2] if quick else found


def pool(shape, device, seed=0):
    """float32 log-probabilities [N, K, C] with varied confidence."""
    import torch

    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape.n, shape.k, shape.c, generator=g) * 2 + torch.randn(shape.n, 1, shape.c, generator=g) * 2
    return logits.log_softmax(-1).to(device)


class Outcome(NamedTuple):
    values: list  # tensors compared with the float64 reference's
    picks: Optional[object] = None  # int64 tensor compared with the reference's on the same input


def _ops():
    import torch

    import kbald_kernels  # noqa: F401  (registers the ops)

    return torch.ops.kbald_kernels


def _poisoned(lp):
    bad = lp.clone()
    bad[lp.shape[0] // 2, 0, 0] = math.nan
    return bad


def _validating(op, lp, backend, count):
    """The op's terms and its validation flag, which must stay down on the pool and go
    up on a copy with one NaN: compared as values, 0 and 1."""
    *terms, invalid = op(lp, backend)
    return Outcome([*terms[:count], invalid.float(), op(_poisoned(lp), backend)[-1].float()])


def _entropies(lp, backend):
    return _validating(_ops().entropies, lp, backend, 2)


def _uncertainties(lp, backend):
    return _validating(_ops().uncertainties, lp, backend, 4)


def _pairwise_mutual_information(lp, backend):
    a, b = lp[:300], lp[-257:]
    return Outcome([_ops().pairwise_mutual_information(a, b, backend)])


def _epig(lp, backend):
    return Outcome([_ops().epig(lp, lp[:max(1, min(100, lp.shape[0] // 4))], None, backend)])


def _kbald_pairwise_steps(lp, backend):
    import torch

    ops = _ops()
    h, ch, _ = ops.entropies(lp, backend)
    selected = torch.zeros(lp.shape[0], dtype=torch.bool, device=lp.device)
    picks, scores = ops.kbald_pairwise_steps(lp, h, (h - ch).clone(), selected, None, min(10, lp.shape[0]), backend)
    return Outcome([scores], picks)


def _mutual_information_with_pick(lp, backend):
    import torch

    ops = _ops()
    pick = torch.tensor([lp.shape[0] // 2], device=lp.device)
    return Outcome([ops.mutual_information_with_pick(lp, ops.entropies(lp, backend)[0], pick, backend)])


def _add_triple_interactions(lp, backend):
    import torch

    ops = _ops()
    lp = lp[:max(16, 2_000_000 // lp.shape[2] ** 2)]  # the C³ joints of every point against two picks
    picks = torch.tensor([3, 17, 30], device=lp.device) % lp.shape[0]
    h = ops.entropies(lp, backend)[0]
    pairs = torch.stack([h + h[p] - ops.mutual_information_with_pick(lp, h, p.view(1), backend) for p in picks])
    triple = torch.zeros_like(h)
    ops.add_triple_interactions(lp, h, pairs, picks, triple, backend)
    return Outcome([triple])


def _joint_entropy(lp, backend):
    import torch

    # Exact enumeration of C^|S| configurations: as many picks as keep that to 10⁴.
    size = max(1, min(3, int(math.log(10_000) / math.log(lp.shape[2]))))
    selected = (torch.tensor([1, 5, 9][:size], device=lp.device) % lp.shape[0]).unique()
    return Outcome([_ops().joint_entropy(lp, selected, None, None, backend)])


def _accumulate_joint_entropy(lp, backend):
    import torch

    g = torch.Generator().manual_seed(3)
    weights = torch.rand(64, lp.shape[1], generator=g).softmax(-1).to(device=lp.device, dtype=lp.dtype)
    alpha = torch.full((64,), 1 / 64, device=lp.device, dtype=lp.dtype)
    return Outcome([_ops().accumulate_joint_entropy(weights, alpha, lp, backend)])


def _embedding_parts(lp):
    """Dense [N, 4·C] and factored ([N, C], [N, C]) embeddings made from the pool."""
    return {"dense": [lp[:, :4].flatten(1)], "factored": [lp[:, 0], lp[:, 1].exp()]}


def _kmeanspp_steps(lp, backend):
    import torch

    n = lp.shape[0]
    values, picks = [], []
    for parts in _embedding_parts(lp).values():
        for mode in ("sample", "argmax"):
            distances = torch.full((n,), math.inf, device=lp.device, dtype=lp.dtype)
            selected = torch.zeros(n, dtype=torch.bool, device=lp.device)
            chosen, scores = _ops().kmeanspp_steps(parts, distances, selected, None, 7, 0, min(20, n), mode, backend)
            picks.append(chosen)
            values.append(scores)
    return Outcome(values, torch.cat(picks))


def _min_squared_distances(lp, backend):
    return Outcome([_ops().min_squared_distances(parts, [p[:5] for p in parts], backend)
                    for parts in _embedding_parts(lp).values()])


class Case(NamedTuple):
    run: Callable
    tolerance: tuple
    watched: str  # the reference function whose call during a kernel run means the op fell back


CASES = {
    "entropies": Case(_entropies, VALUES_TOLERANCE, "entropies"),
    "uncertainties": Case(_uncertainties, VALUES_TOLERANCE, "uncertainties"),
    "pairwise_mutual_information": Case(_pairwise_mutual_information, VALUES_TOLERANCE,
                                        "pairwise_mutual_information"),
    "epig": Case(_epig, VALUES_TOLERANCE, "epig"),
    "kbald_pairwise_steps": Case(_kbald_pairwise_steps, VALUES_TOLERANCE, "kbald_pairwise_steps"),
    "mutual_information_with_pick": Case(_mutual_information_with_pick, VALUES_TOLERANCE,
                                         "mutual_information_with_pick"),
    "add_triple_interactions": Case(_add_triple_interactions, LOOSE_TOLERANCE, "add_triple_interactions"),
    "joint_entropy": Case(_joint_entropy, VALUES_TOLERANCE, "accumulate_joint_entropy"),
    "accumulate_joint_entropy": Case(_accumulate_joint_entropy, VALUES_TOLERANCE, "accumulate_joint_entropy"),
    "kmeanspp_steps": Case(_kmeanspp_steps, DISTANCE_TOLERANCE, "kmeanspp_steps"),
    "min_squared_distances": Case(_min_squared_distances, DISTANCE_TOLERANCE, "min_squared_distances"),
}


def runnable(device, interpret):
    """[(op, backend, why it cannot run or None)] of the kernels registered for
    ``device``'s tensors: on CUDA every registered kernel (one that cannot run is a
    failing row), on a CPU the host twins and, with ``interpret``, the Triton kernels."""
    from . import backends

    found = []
    for op in CASES:
        for name in ("triton", "cuda"):
            if name not in backends._REGISTRY[op] or (name == "triton" and device.type == "cpu" and not interpret):
                continue
            try:
                backends.choose_backend(op, name, device)
            except backends.BackendUnavailableError as exc:
                if device.type == "cuda":
                    found.append((op, name, str(exc)))
                continue
            found.append((op, name, None))
    return found


@contextmanager
def watching(name):
    """Counts calls of ``kbald_kernels.reference.<name>`` inside the block (a list of one int)."""
    from . import reference

    original = getattr(reference, name)
    calls = [0]

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(reference, name, counted)
    try:
        yield calls
    finally:
        setattr(reference, name, original)


def _synchronize(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def error_ratio(got, want, tolerance):
    """max |got - want| / (atol + rtol·|want|) over the finite reference entries; inf
    where the kernel's entry is not finite but the reference's is, or the two disagree on
    which entries are finite. (ratio, max absolute error)"""
    import torch

    got, want = got.double().cpu(), want.double().cpu()
    atol, rtol = tolerance
    if got.shape != want.shape:
        return math.inf, math.inf
    finite = torch.isfinite(want)
    if not torch.equal(torch.isfinite(got), finite) or not torch.equal(got[~finite], want[~finite]):
        return math.inf, math.inf
    if not bool(finite.any()):
        return 0.0, 0.0
    diff = (got[finite] - want[finite]).abs()
    return float((diff / (atol + rtol * want[finite].abs())).max()), float(diff.max())


class Row(NamedTuple):
    op: str
    ran: str
    shape: str
    error: float  # as a fraction of the tolerance
    abs_error: float
    picks: str  # "equal", "DIFFER" or "-"
    ms: float
    verdict: str  # "ok", "MISMATCH", "FALLBACK", "ERROR: …"

    @property
    def ok(self):
        return self.verdict == "ok"


def check_one(op, backend, lp, shape_label, interpret):
    """One row: ``op`` on ``backend`` at ``lp`` against the reference."""
    import torch

    from .backends import path_name

    case = CASES[op]
    ran = path_name(backend, lp.device) + (" (interpreter)" if backend == "triton" and interpret else "")
    shape_text = "x".join(map(str, lp.shape))
    try:
        with watching(case.watched) as calls:
            got = case.run(lp, backend)  # the first call compiles
            _synchronize(lp.device)
            start = time.perf_counter()
            got = case.run(lp, backend)
            _synchronize(lp.device)
            ms = (time.perf_counter() - start) * 1e3
        # A greedy op's values belong to its picks: both are compared with the reference's
        # on the same float32 input, where near ties fall the same way.
        want = case.run(lp.double() if got.picks is None else lp, "torch")
    except Exception as exc:  # every failure is a row, not the end of the check
        line = (str(exc).strip().splitlines() or [""])[0][:160]
        return Row(op, ran, f"{shape_label} {shape_text}", math.nan, math.nan, "-", math.nan,
                   f"ERROR: {type(exc).__name__}: {line}"), traceback.format_exc()
    ratios = [error_ratio(g, w, case.tolerance) for g, w in zip(got.values, want.values)]
    ratio = max(r for r, _ in ratios)
    abs_error = max(a for _, a in ratios)
    picks = "-"
    if got.picks is not None:
        picks = "equal" if torch.equal(got.picks.cpu(), want.picks.cpu()) else "DIFFER"
    verdict = ("FALLBACK" if calls[0] else "MISMATCH" if ratio > 1 or picks == "DIFFER" else "ok")
    return Row(op, ran, f"{shape_label} {shape_text}", ratio, abs_error, picks, ms, verdict), None


def environment(device):
    """[(name, value)] describing the machine and the libraries."""
    import torch

    from . import native

    lines = [("python", platform.python_version()), ("torch", torch.__version__)]
    try:
        import triton

        lines.append(("triton", triton.__version__))
    except ImportError as exc:
        lines.append(("triton", f"not installed ({exc})"))
    import numpy

    lines.append(("numpy", numpy.__version__))
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        lines += [("device", torch.cuda.get_device_name(device)), ("compute capability", f"{major}.{minor}"),
                  ("torch CUDA", str(torch.version.cuda))]
    else:
        lines.append(("device", f"CPU {platform.machine()} ({os.cpu_count()} cores)"))
    host = native.host_module()
    lines.append(("host C++ module", host if isinstance(host, str) else
                  f"loaded ({host.openmp_threads()} OpenMP threads)"))
    cuda = native.cuda_module()
    if isinstance(cuda, str):
        lines.append(("CUDA module", cuda))
    else:
        lines.append(("CUDA module", f"loaded, built for sm_{cuda.architectures}"))
        lines.append(("CUDA runtime (module)", _cuda_version(cuda.runtime_version)))
        lines.append(("CUDA driver", _cuda_version(cuda.driver_version)))
    return lines


def _cuda_version(call):
    try:
        version = call()
    except RuntimeError as exc:
        return str(exc)
    return "none" if version == 0 else f"{version // 1000}.{version % 1000 // 10}"


def _format(value, digits):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def table(rows):
    header = ("op", "ran", "shape", "err/tol", "max abs err", "picks", "ms", "verdict")
    body = [(r.op, r.ran, r.shape, _format(r.error, 3), "-" if math.isnan(r.abs_error) else f"{r.abs_error:.1e}",
             r.picks, _format(r.ms, 2), r.verdict) for r in rows]
    return [header, *body]


def markdown(rows):
    lines = table(rows)
    out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
    return out + ["| " + " | ".join(line) + " |" for line in lines[1:]]


def run(device="cpu", quick=False, interpret=False, out=print, done=None):
    """Check every runnable (op, backend) on ``device``; returns (rows, tracebacks).
    ``done(rows)`` is called after each row."""
    import torch

    from .backends import path_name

    device = torch.device(device)
    found = runnable(device, interpret)
    rows, failures = [], []
    for shape in shapes(device.type, interpret, quick):
        lp = pool(shape, device)
        for op, backend, unavailable in found:
            if unavailable:
                row, trace = Row(op, path_name(backend, device), f"{shape.label} {'x'.join(map(str, lp.shape))}",
                                 math.nan, math.nan, "-", math.nan, f"UNAVAILABLE: {unavailable}"), None
            else:
                row, trace = check_one(op, backend, lp, shape.label, interpret)
            rows.append(row)
            if trace:
                failures.append(trace)
            out(f"  {row.op:<30} {row.ran:<24} {row.shape:<22} err/tol {_format(row.error, 3):>6}  "
                f"picks {row.picks:<6} {_format(row.ms, 2):>8} ms  {row.verdict}")
            if done is not None:
                done(rows)
    return rows, failures


def main(args):
    """The ``kbald check`` command; returns its exit status."""
    if args.interpret:
        if args.device != "cpu":
            raise ValueError("--interpret runs the Triton kernels on CPU tensors; use it with --device cpu")
        if os.environ.get("TRITON_INTERPRET") != "1":
            # triton reads it once, at its import, which importing kbald_kernels has done: a fresh process.
            import subprocess

            argv = ["--device", args.device, "--interpret", *(["--quick"] if args.quick else []),
                    *(["--report", str(args.report)] if args.report else [])]
            return subprocess.run([sys.executable, "-m", "kbald_kernels", "check", *argv],
                                  env={**os.environ, "TRITON_INTERPRET": "1"}).returncode
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA device")
    device = torch.device(args.device)
    title = f"kbald check --device {args.device}{' --interpret' if args.interpret else ''}" \
            f"{' --quick' if args.quick else ''}"
    print(f"{title}: every op on every backend that runs here against the float64 reference")
    machine = environment(device)

    def report(rows):
        if args.report:
            bad = sum(not r.ok for r in rows)
            lines = [f"# {title}", "", *markdown(rows), "", *(f"- {name}: {value}" for name, value in machine), "",
                     f"{len(rows) - bad} of {len(rows)} rows ok."]
            Path(args.report).write_text("\n".join(lines) + "\n")

    started = time.perf_counter()
    rows, failures = run(device, args.quick, args.interpret, done=report)
    print()
    for line in markdown(rows):
        print(line)
    print()
    for name, value in machine:
        print(f"{name}: {value}")
    bad = [r for r in rows if not r.ok]
    if not rows:
        print("no kernel backend can run here: every op would run the torch reference (see `kbald backends`)")
    for trace in failures:
        print(trace)
    print(f"{len(rows) - len(bad)} of {len(rows)} rows ok in {time.perf_counter() - started:.1f} s"
          + (f"; {len(bad)} failed: " + ", ".join(f"{r.op} on {r.ran} ({r.verdict})" for r in bad) if bad else ""))
    return 1 if bad or not rows else 0
