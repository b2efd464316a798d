"""Every benchmark report in one run: ``python -m bench [--device cuda] [--quick]``.

Runs bench.information, bench.one_pass, bench.candidates, bench.epig, bench.batchbald, bench.kmeanspp, bench.classes, bench.scaling and
bench.ops with the same options, and bench.fronts (baal's heuristics against the front) and
bench.distributed (gloo processes on the CPU); each writes its Markdown and JSON report (classes and
scaling also a PNG plot) under bench/results/ and prints its table. bench.papers (the papers'
figures, 13 minutes on a CPU) runs on its own.
"""

import argparse

from . import batchbald, candidates, classes, distributed, epig, fronts, information, kmeanspp, one_pass, ops, scaling


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    common = (["--device", args.device] if args.device else []) + (["--quick"] if args.quick else [])
    information.main(common)
    one_pass.main(common)
    candidates.main(common)
    epig.main(common)
    batchbald.main(common)
    kmeanspp.main(common)
    classes.main(common)
    scaling.main(common)
    ops.main(common)
    fronts.main(["--quick"] if args.quick else [])
    distributed.main(["--quick"] if args.quick else [])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
