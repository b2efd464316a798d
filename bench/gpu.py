"""Turn a lent GPU into committed evidence within a time budget:
``python -m bench.gpu --budget SECONDS [--stage NAME ...]``.

Stages run in order of value, each a subprocess held to its share of the budget
and to what is left of it, and the summary is rewritten after every one, so a
lease that ends early still leaves everything done so far:

  build     the compiled modules, CUDA for this GPU's architecture only (forced)
  check     kbald check --device cuda: every kernel natively against the float64
            reference at an odd pool, P1 and 1 000 classes (values, picks, time,
            the machine); its table heads the summary
  smoke     the rest of the native smoke set: pytest -m gpu_smoke (the CUDA
            BatchBALD tests, NCCL, opcheck and fullgraph on CUDA tensors)
  headline  the headline row of every report against its DESIGN.md target
  compile   every Triton launch compiled for sm_90/sm_80, registers and spills
  traffic   launches and device→host reads per pick of every greedy loop
  tests     the whole suite, natively (no Triton interpreter on a CUDA machine)
  information, epig, batchbald, kmeanspp, classes, scaling, ops
            the full benchmark reports ("bench": all of them)

The first four have shares (build 150 s, check 150 s, smoke 120 s, headline 150 s); the rest
run as time allows. A stage that would start with under 20 s left is not run, and
the summary says so. Everything lands in ``bench/results/<device>-<date>/``: one
log per stage, the reports (Markdown and JSON) and ``summary.md`` (each stage's exit
status and time, and each headline row's ratio to its target); ``--archive FILE``
also packs that folder into one .tar.gz. Without a GPU only the stages that need
none run (compile, traffic); ``--plan`` prints what would run and where it would write.
"""

import argparse
import json
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
BENCH_REPORTS = ("information", "epig", "batchbald", "kmeanspp", "classes", "scaling", "ops")
ORDER = ("build", "check", "smoke", "headline", "compile", "traffic", "tests", *BENCH_REPORTS)
NEEDS_GPU = {"build", "check", "smoke", "headline", "tests", *BENCH_REPORTS}
# Seconds a stage may take at most; the others take what is left.
SHARES = {"build": 150.0, "check": 150.0, "smoke": 120.0, "headline": 150.0}
FLOOR_S = 20.0  # no stage starts with less than this left
MARGIN_S = 10.0  # kept for the summary and the archive


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
    pytest = [python, "-m", "pytest", "-q", "-rs", "python_tests", "-p", "no:cacheprovider"]
    return {
        "build": [("setup.py build_ext --inplace", [python, "setup.py", "build_ext", "--inplace"],
                   {"KBALD_FORCE_CUDA": "1", "KBALD_CUDA_ARCHS": arch or "90"})],
        "check": [("kbald check --device cuda", [python, "-m", "kbald_kernels", "check", "--device", device,
                                                 "--report", str(results / "check.md")], {})],
        "smoke": [("pytest -m gpu_smoke", [*pytest, "-m", "gpu_smoke"], {"KBALD_FORCE_CUDA": "1"})],
        "headline": [("bench.headline", [python, "-m", "bench.headline", "--device", device], bench_env)],
        "compile": [("compile_triton_kernels.py", [python, "python_tests/compile_triton_kernels.py"],
                     {"TRITON_INTERPRET": None})],
        "traffic": [("device_traffic.py", [python, "python_tests/device_traffic.py"], {"TRITON_INTERPRET": "1"})],
        "tests": [("pytest python_tests", [*pytest, "-m", "slow or not slow"], {"KBALD_FORCE_CUDA": "1"})],
        **{name: [(f"bench.{name}", [python, "-m", f"bench.{name}", "--device", device], bench_env)]
           for name in BENCH_REPORTS},
    }


def run_step(label, argv, extra_env, log, limit_s):
    env = {**os.environ, "KBALD_STRICT": "1"}  # a kernel that fails must fail its stage, not fall back
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


def run_plan(plan, order, budget_s, results, device_name, skipped=()):
    """Run ``order``'s stages of ``plan`` within ``budget_s`` seconds, rewriting
    ``results/summary.md`` after each; returns True when every stage run passed."""
    results.mkdir(parents=True, exist_ok=True)
    started = time.time()
    done, not_run, failed = [], [], False
    for stage in order:
        left = budget_s - MARGIN_S - (time.time() - started)
        if left < FLOOR_S:
            not_run.append(stage)
            continue
        with open(results / f"{stage}.log", "a") as log:
            for label, step_argv, extra in plan[stage]:
                limit = min(SHARES.get(stage, left), budget_s - MARGIN_S - (time.time() - started))
                rc, seconds = run_step(label, step_argv, extra, log, limit)
                failed |= rc != 0
                done.append((stage, label, rc, seconds, limit))
                print(f"| {stage} | {label} | {rc} | {seconds:.0f} s of {limit:.0f} s |", flush=True)
        write_summary(results, device_name, budget_s, done, not_run, skipped)
    write_summary(results, device_name, budget_s, done, not_run, skipped)
    return not failed


def write_summary(results, device_name, budget_s, done, not_run, skipped):
    """summary.md: the check's table (once it exists), each stage's exit and time, what
    was not run and why, and the headline rows' ratios to their DESIGN.md targets (from
    the headline report, once it exists)."""
    lines = [f"# python -m bench.gpu on {device_name}", "",
             f"Date: {date.today().isoformat()}. Python {platform.python_version()}. Budget {budget_s:.0f} s.", ""]
    check = results / "check.md"
    if check.exists():
        lines += ["#" + line if line.startswith("# ") else line for line in check.read_text().splitlines()] + [""]
    lines += ["| stage | step | exit | time | limit |", "|---|---|---|---|---|"]
    lines += [f"| {stage} | {label} | {rc} | {seconds:.0f} s | {limit:.0f} s |"
              for stage, label, rc, seconds, limit in done]
    if not_run:
        lines += ["", f"Not run (under {FLOOR_S:.0f} s of the budget left): {', '.join(not_run)}."]
    if skipped:
        lines += ["", f"Not run here (no GPU): {', '.join(skipped)}."]
    for report in sorted(results.glob("headline-*.json")):
        headline = json.loads(report.read_text())
        lines += ["", "| headline row | measured | target | vs target |", "|---|---|---|---|"]
        lines += [f"| {row[0]} | {row[3]} | {row[2]} | {row[4]} |" for row in headline["rows"]]
    (results / "summary.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", action="append", choices=[*ORDER, "bench"],
                        help="run only these stages (repeatable; 'bench': every full report); default: every stage")
    parser.add_argument("--budget", type=float, default=600.0,
                        help="seconds the whole command may take (default 600); stages stop cleanly before it")
    parser.add_argument("--plan", action="store_true", help="print the stages and the results folder, run nothing")
    parser.add_argument("--archive", type=Path, help="also write the results folder to this .tar.gz")
    args = parser.parse_args(argv)
    found = gpu()
    name, arch = found if found else (f"cpu {platform.machine()}", None)
    results = ROOT / "bench" / "results" / f"{slug(name)}-{date.today().isoformat()}"
    plan = stages("cuda", arch, results)
    asked = {s for stage in args.stage or ORDER for s in (BENCH_REPORTS if stage == "bench" else [stage])}
    wanted = [stage for stage in ORDER if stage in asked]
    runnable = [s for s in wanted if found or s not in NEEDS_GPU]
    skipped = [s for s in wanted if s not in runnable]
    print(f"device: {name}" + (f" (sm_{arch})" if arch else "") + f"; results: {results.relative_to(ROOT)}; "
          f"budget {args.budget:.0f} s")
    for stage in wanted:
        for label, step_argv, extra in plan[stage]:
            where = "runs" if stage in runnable else "needs a GPU"
            share = f"up to {SHARES[stage]:.0f} s" if stage in SHARES else "as time allows"
            print(f"  {stage:11} {where:12} {share:15} {label}: {shlex.join(step_argv)}")
    if args.plan:
        return 0
    passed = run_plan(plan, runnable, args.budget, results, name, skipped)
    print(f"wrote {results.relative_to(ROOT)}/summary.md")
    if args.archive:
        with tarfile.open(args.archive, "w:gz") as archive:
            archive.add(results, arcname=results.name)
        print(f"wrote {args.archive}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
