"""Compile every Triton kernel launch the launchers make to GPU code, without a GPU.

The interpreter that runs the kernels in CI accepts programs the compiler rejects
(dot operand shapes, layouts, integer widths), so interpreter tests alone cannot
show that a kernel builds for a real card. This script calls each launcher on CPU
tensors with the launches intercepted, turns every launch into the signature and
constexprs Triton would compile, and compiles it through PTX to a cubin (Triton's
bundled ptxas): for sm_90 (the H100) with every autotuning config, and for
sm_80 with the first config of each (a compile time budget: the configs differ
only in warps and pipeline depth). It prints one line per compilation with the registers, spills
and shared memory ptxas reports, and exits non-zero if a compilation fails or a
kernel was never launched; a spill (any bytes stored to local memory) fails it too.

Run with ``TRITON_INTERPRET`` unset (python_tests/test_triton_gpu_compile.py does).
"""

import contextlib
import io
import multiprocessing
import os
import re
import sys
import tempfile
import time

MAIN_ARCHITECTURE = 90
OTHER_ARCHITECTURES = (80,)


def _fail(message):
    print(f"compile_triton_kernels: {message}", file=sys.stderr)
    sys.exit(1)


if os.environ.get("TRITON_INTERPRET", "") == "1":
    _fail("TRITON_INTERPRET=1 turns the kernels into interpreted functions; unset it")
# A fresh cache, so ptxas really runs and reports on every kernel, and its log printed.
os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="kbald-triton-cache-")
os.environ["TRITON_DUMP_PTXAS_LOG"] = "1"

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from triton.runtime.autotuner import Autotuner  # noqa: E402
from triton.runtime.jit import JITFunction  # noqa: E402

from kbald_kernels.reference.kmeanspp import DenseEmbeddings, FactoredEmbeddings  # noqa: E402
from kbald_kernels.triton import epig, information_terms, kbald_step, kmeanspp_step  # noqa: E402
from kbald_kernels.triton import pairwise_mutual_information, select_candidate  # noqa: E402

MODULES = (information_terms, pairwise_mutual_information, epig, kbald_step, kmeanspp_step, select_candidate)

POINTER_TYPES = {
    torch.float64: "*fp64", torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16",
    torch.int64: "*i64", torch.int32: "*i32", torch.uint8: "*u8", torch.bool: "*i1",
}


def _scalar_type(value):
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -2**31 <= value < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"
    raise TypeError(f"no Triton type for argument {value!r}")


class Launch:
    """One intercepted launch: the kernel, its signature and constexprs, and the
    launch options (warps, stages) of one autotuning config."""

    def __init__(self, kernel, args, kwargs, first_config):
        self.first_config = first_config
        options = {name: kwargs.pop(name) for name in ("num_warps", "num_stages") if name in kwargs}
        bound = dict(zip(kernel.arg_names, args))
        bound.update(kwargs)
        self.kernel = kernel
        self.signature, self.constexprs = {}, {}
        for param in kernel.params:
            value = bound[param.name]
            if param.is_constexpr:
                self.signature[param.name] = "constexpr"
                self.constexprs[param.name] = value
            elif isinstance(value, torch.Tensor):
                self.signature[param.name] = POINTER_TYPES[value.dtype]
            else:
                self.signature[param.name] = _scalar_type(value)
        self.options = {"num_warps": options.get("num_warps", 4), "num_stages": options.get("num_stages", 3)}

    def key(self):
        return (self.kernel.__name__, tuple(self.signature.items()), tuple(map(str, self.constexprs.items())),
                tuple(self.options.items()))

    def describe(self):
        pointers = sorted({v for v in self.signature.values() if v.startswith("*fp") or v.startswith("*bf")})
        constants = " ".join(f"{k}={getattr(v, 'name', v)}" for k, v in self.constexprs.items())
        return f"{self.kernel.__name__} [{','.join(pointers)}] {constants}"


LAUNCHES = {}
JOBS = []  # (launch, architecture), filled before the workers fork


def _record(kernel, *args, grid, warmup, first_config=True, **kwargs):
    launch = Launch(kernel, args, dict(kwargs), first_config)
    LAUNCHES.setdefault(launch.key(), launch)


def _record_every_config(tuner, *args, **kwargs):
    tuner.nargs = dict(zip(tuner.arg_names, args))  # what the tuner's own pruning reads
    for number, config in enumerate(tuner.prune_configs(kwargs)):
        tuner.fn.run(*args, **kwargs, **config.all_kwargs(), first_config=number == 0)


def _log_probs(n, k, c, dtype):
    return torch.log_softmax(torch.randn(n, k, c), -1).to(dtype)


def drive_launchers():
    """Call every launcher on shapes that select each of its specialisations: every
    class-padding width (C = 3, 10, 17, 100 pad to 4, 16, 32, 128; C = 257 and 1 000
    take the kernels' class blocks; the triple kernel also at C = 7 and 32), every
    input dtype, K below the K block, both pairwise layouts, every k-means++ mode and
    embedding kind."""
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for c in (3, 10, 17, 100, 257, 1000):
            lp = _log_probs(9, 20, c, dtype)
            information_terms.entropies(lp)
            information_terms.uncertainties(lp)
            pairwise_mutual_information.pairwise_mutual_information(lp)
            epig.epig(lp, lp[:5], (torch.zeros(9), torch.zeros(5)), torch.full((5,), 0.2))
            entropy = torch.zeros(9)
            for newest in (None, 0):
                kbald_step.kbald_pairwise_steps(lp, entropy, torch.zeros(9), torch.zeros(9, dtype=torch.bool),
                                                newest, 2)
            kbald_step.mutual_information_with_pick(lp, entropy, torch.tensor([1]))
        for c in (3, 7, 10, 17, 32, 100, 1000):
            lp = _log_probs(9, 20, c, dtype)
            kbald_step.add_triple_interactions(lp, torch.zeros(9), torch.zeros(3, 9), torch.tensor([0, 1, 2]),
                                               torch.zeros(9))
    for c in (3, 100):
        lp = _log_probs(9, 3, c, torch.float32)
        information_terms.entropies(lp)
        pairwise_mutual_information.pairwise_mutual_information(lp[:4], lp)
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        distance_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        dense = DenseEmbeddings(torch.randn(70, 33).to(dtype))
        factored = FactoredEmbeddings(torch.randn(70, 33).to(dtype), torch.randn(70, 10).to(dtype))
        for embeddings, rows in ((dense, lambda e, i: DenseEmbeddings(e.x[i])),
                                 (factored, lambda e, i: FactoredEmbeddings(e.features[i], e.residuals[i]))):
            for mode in ("sample", "argmax"):
                for newest, pool_indices in ((None, None), (3, None), (3, 3 * torch.arange(70))):
                    kmeanspp_step.kmeanspp_steps(embeddings, torch.full((70,), torch.inf, dtype=distance_dtype),
                                                 torch.zeros(70, dtype=torch.bool), newest, 7, 0, 2, mode,
                                                 pool_indices)
            kmeanspp_step.min_squared_distances(embeddings, rows(embeddings, torch.tensor([1, 5])))
    # Past BLOCK_CANDIDATES blocks the pick takes the parallel two-stage reduction.
    many = kmeanspp_step.BLOCK_N * select_candidate.BLOCK_CANDIDATES + 1
    kmeanspp_step.kmeanspp_steps(DenseEmbeddings(torch.randn(many, 2)), torch.full((many,), torch.inf),
                                 torch.zeros(many, dtype=torch.bool), None, 7, 0, 1, "sample")


def _kernels_defined():
    jitted = [value.fn if isinstance(value, Autotuner) else value
              for module in MODULES for value in vars(module).values()]
    return {fn.__name__ for fn in jitted if isinstance(fn, JITFunction) and fn.__name__.endswith("_kernel")}


PTXAS_REPORT = re.compile(r"Used (\d+) registers")
SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def compile_launch(launch, arch):
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        compiled = triton.compile(ASTSource(launch.kernel, launch.signature, launch.constexprs),
                                  target=GPUTarget("cuda", arch, 32), options=launch.options)
    if not compiled.asm.get("cubin"):
        raise RuntimeError("no cubin produced")
    text = log.getvalue()
    registers = PTXAS_REPORT.search(text)
    spills = SPILLS.search(text)
    return (registers.group(1) if registers else "?",
            f"{spills.group(1)}/{spills.group(2)}" if spills else "?",
            compiled.metadata.shared)


def _compile_job(index):
    launch, arch = JOBS[index]
    try:
        return compile_launch(launch, arch), None
    except Exception as exc:  # every failure is reported, not only the first
        return None, f"{type(exc).__name__}: {exc}"


def main():
    JITFunction.run = _record
    Autotuner.run = _record_every_config
    torch.manual_seed(0)
    drive_launchers()
    never_launched = _kernels_defined() - {launch.kernel.__name__ for launch in LAUNCHES.values()}
    if never_launched:
        _fail(f"kernels the driver never launched, so never compiled: {sorted(never_launched)}")
    JOBS.extend((launch, MAIN_ARCHITECTURE) for launch in LAUNCHES.values())
    JOBS.extend((launch, arch) for launch in LAUNCHES.values() if launch.first_config for arch in OTHER_ARCHITECTURES)
    print(f"triton {triton.__version__}: {len(LAUNCHES)} launch specialisations, {len(JOBS)} compilations",
          flush=True)
    print("arch   warps stages  regs  spill st/ld  smem   kernel [operand dtypes] constexprs")
    started = time.time()
    # Forked workers inherit the recorded launches; compiling is CPU-bound and serial per kernel.
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        results = pool.map(_compile_job, range(len(JOBS)), chunksize=1)
    failures = []
    for (launch, arch), (report, error) in zip(JOBS, results):
        if error is not None:
            failures.append(f"sm_{arch} {launch.describe()} {launch.options}: {error}")
            continue
        registers, spills, shared = report
        line = (f"sm_{arch}  {launch.options['num_warps']:>5} {launch.options['num_stages']:>6} {registers:>5} "
                f"{spills:>12} {shared:>6}   {launch.describe()}")
        print(line)
        if spills != "0/0":
            failures.append(f"spills (stores/loads, bytes a thread): {line}")
    print(f"compiled {len(JOBS)} kernels in {time.time() - started:.0f} s")
    if failures:
        _fail(f"{len(failures)} compilation(s) failed or spilled:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
