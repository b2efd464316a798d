"""Turn a lent GPU into committed evidence: ``python -m bench.gpu [--stage NAME ...]``.

Stages, each a subprocess under its own time limit (default 8 minutes) so that any
one fits a single call to a lent machine:

  build    the compiled modules, CUDA for this GPU's architecture only (forced)
  tests    the whole suite, natively (no Triton interpreter on a CUDA machine)
  compile  every Triton launch compiled for sm_90/sm_80, registers and spills
  traffic  launches and device→host reads per pick of every greedy loop
  information, epig, batchbald, kmeanspp, scaling
           the benchmark reports on the GPU ("bench": all five), each under the limit

Everything lands in ``bench/results/<device>-<date>/``: one log per stage, the
benchmark reports (Markdown and JSON) and ``summary.md`` with each stage's exit
status and time, ready to commit; ``--archive FILE`` also packs that folder into
one .tar.gz (for a machine that hands back only a few files). Without a GPU only
the stages that need none run (compile, traffic); ``--plan`` prints what would run
and where it would write.
"""

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tarfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_REPORTS = ("information", "epig", "batchbald", "kmeanspp", "scaling")
NEEDS_GPU = {"build", "tests", *BENCH_REPORTS}


def gpu():
    """(name, sm architecture such as "90") of CUDA device 0, or None without one."""
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return torch.cuda.get_device_name(0), f"{major}{minor}"


def slug(text):
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-").lower()


def stages(device, arch, results):
    """{stage: [(label, argv, extra environment)]} in running order."""
    python = sys.executable
    bench_env = {"KBALD_BENCH_RESULTS": str(results)}
    return {
        "build": [("setup.py build_ext --inplace", [python, "setup.py", "build_ext", "--inplace"],
                   {"KBALD_FORCE_CUDA": "1", "KBALD_CUDA_ARCHS": arch or "90"})],
        "tests": [("pytest python_tests", [python, "-m", "pytest", "-q", "-rs", "python_tests", "-p",
                                           "no:cacheprovider"], {"KBALD_FORCE_CUDA": "1"})],
        "compile": [("compile_triton_kernels.py", [python, "python_tests/compile_triton_kernels.py"],
                     {"TRITON_INTERPRET": None})],
        "traffic": [("device_traffic.py", [python, "python_tests/device_traffic.py"], {"TRITON_INTERPRET": "1"})],
        **{name: [(f"bench.{name}", [python, "-m", f"bench.{name}", "--device", device], bench_env)]
           for name in BENCH_REPORTS},
    }


def run_step(label, argv, extra_env, log, limit_s):
    env = dict(os.environ)
    for name, value in extra_env.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    started = time.time()
    log.write(f"$ {' '.join(f'{k}={v}' for k, v in extra_env.items() if v)} {shlex.join(argv)}\n")
    log.flush()
    try:
        rc = subprocess.run(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=limit_s).returncode
    except subprocess.TimeoutExpired:
        rc = "timed out"
    seconds = time.time() - started
    log.write(f"# {label}: exit {rc} after {seconds:.0f} s\n")
    log.flush()
    return rc, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", action="append",
                        choices=["build", "tests", "compile", "traffic", "bench", *BENCH_REPORTS],
                        help="run only these stages (repeatable; 'bench': every report); default: every stage")
    parser.add_argument("--limit", type=float, default=480.0, help="seconds each step may run (default 480)")
    parser.add_argument("--plan", action="store_true", help="print the stages and the results folder, run nothing")
    parser.add_argument("--archive", type=Path, help="also write the results folder to this .tar.gz")
    args = parser.parse_args(argv)
    found = gpu()
    name, arch = found if found else (f"cpu {platform.machine()}", None)
    results = ROOT / "bench" / "results" / f"{slug(name)}-{date.today().isoformat()}"
    plan = stages("cuda", arch, results)
    wanted = [name for stage in args.stage or plan for name in (BENCH_REPORTS if stage == "bench" else [stage])]
    runnable = [s for s in wanted if found or s not in NEEDS_GPU]
    skipped = [s for s in wanted if s not in runnable]
    print(f"device: {name}" + (f" (sm_{arch})" if arch else "") + f"; results: {results.relative_to(ROOT)}")
    for stage in wanted:
        for label, step_argv, extra in plan[stage]:
            where = "runs" if stage in runnable else "needs a GPU"
            print(f"  {stage:8} {where:12} {label}: {shlex.join(step_argv)}")
    if args.plan:
        return 0
    results.mkdir(parents=True, exist_ok=True)
    summary = []
    failed = False
    for stage in runnable:
        with open(results / f"{stage}.log", "a") as log:
            for label, step_argv, extra in plan[stage]:
                rc, seconds = run_step(label, step_argv, extra, log, args.limit)
                failed |= rc != 0
                summary.append(f"| {stage} | {label} | {rc} | {seconds:.0f} s |")
                print(summary[-1], flush=True)
    lines = [f"# python -m bench.gpu on {name}", "",
             f"Date: {date.today().isoformat()}. Python {platform.python_version()}.", "",
             "| stage | step | exit | time |", "|---|---|---|---|", *summary]
    if skipped:
        lines += ["", f"Not run here (no GPU): {', '.join(skipped)}."]
    with open(results / "summary.md", "a") as out:
        out.write("\n".join(lines) + "\n\n")
    print(f"wrote {results.relative_to(ROOT)}/summary.md")
    if args.archive:
        with tarfile.open(args.archive, "w:gz") as archive:
            archive.add(results, arcname=results.name)
        print(f"wrote {args.archive}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
