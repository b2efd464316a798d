"""The ``kbald`` command as a user runs it: through a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def run(*args):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run([sys.executable, "-m", "kbald_kernels", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_example_runs_every_method_on_the_built_in_pool():
    result = run("example", "--pool-size", "300", "--batch-size", "4", "--num-samples", "200")
    assert result.returncode == 0, result.stderr
    for method in ("BALD (top-k)", "2-BALD", "3-BALD", "BatchBALD", "BADGE", "k-means++", "CORESET"):
        assert method in result.stdout
    table = [line for line in result.stdout.splitlines() if line.startswith(("BALD", "2-", "3-", "Batch"))]
    assert len(table) == 4 and all(len(line.split()) >= 6 for line in table)


def test_backends_names_each_path_and_the_backend_that_asks_for_it():
    result = run("backends")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line[:16].strip() for line in lines] == ["torch reference", "Triton", "CUDA", "host C++"]
    assert "(backend=cuda, CPU tensors)" in lines[3] and " yes " in lines[3] and "OpenMP threads" in lines[3]
    assert " yes " in lines[0]


@pytest.mark.parametrize("args,message", [
    (["example", "--batch-size", "500", "--pool-size", "100"], "batch_size must be between 1 and"),
    (["example", "--pool-size", "0"], "must be a positive integer"),
    (["--methods", "bald,magic"], "--methods takes a comma-separated subset of"),
    (["select", "--method", "bald", "--batch-size", "2", "x.npy", "--prefilter", "margin:0"],
     "takes SCORE:SIZE with SCORE one of"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("files")
    gen = torch.Generator().manual_seed(0)
    lp = torch.log_softmax(torch.randn(40, 6, 4, generator=gen) * 2, -1)
    np.save(root / "log_probs.npy", lp.numpy())
    np.save(root / "targets.npy", torch.log_softmax(torch.randn(9, 6, 4, generator=gen), -1).numpy())
    torch.save({"probs": lp.exp()}, root / "probs.pt")
    np.savez(root / "factors.npz", features=np.random.randn(40, 7).astype("float32"),
             logits=np.random.randn(40, 4).astype("float32"))
    np.save(root / "embeddings.npy", np.random.randn(40, 5).astype("float32"))
    np.save(root / "rank2.npy", np.zeros((4, 3), dtype="float32"))
    bad = lp.clone()
    bad[3, 2, 1] = float("nan")
    np.save(root / "nan.npy", bad.numpy())
    (root / "garbage.npy").write_bytes(b"not numpy")
    return root


@pytest.mark.parametrize("method,name,extra", [
    ("bald", "log_probs.npy", []), ("kbald2", "log_probs.npy", []), ("kbald3", "log_probs.npy", []),
    ("batchbald", "log_probs.npy", ["--num-samples", "100"]), ("power", "log_probs.npy", []),
    ("bald", "probs.pt", ["--probs"]), ("badge", "factors.npz", []), ("coreset", "embeddings.npy", []),
    ("uncertainty", "log_probs.npy", ["--score", "margin"]), ("uncertainty", "log_probs.npy", []),
    ("epig", "log_probs.npy", ["--targets"]),
])
def test_select_writes_what_the_library_selects(files, tmp_path, method, name, extra):
    import json

    import torch

    import kbald_kernels as kb

    out = tmp_path / "picked.json"
    if extra == ["--targets"]:
        extra = ["--targets", str(files / "targets.npy")]
    result = run("select", "--method", method, "--batch-size", "4", str(files / name), "-o", str(out), *extra)
    assert result.returncode == 0, result.stderr
    written = json.loads(out.read_text())
    lp = torch.from_numpy(np.load(files / "log_probs.npy"))
    expected = {
        "bald": lambda: kb.select_bald(lp, 4), "kbald2": lambda: kb.select_kbald(lp, 4),
        "kbald3": lambda: kb.select_kbald(lp, 4, order=3),
        "batchbald": lambda: kb.select_batchbald(lp, 4, num_samples=100, generator=0),
        "power": lambda: kb.select_stochastic_bald(lp, 4, generator=0),
        "badge": lambda: kb.select_badge(kb.badge_factors(*(torch.from_numpy(np.load(files / "factors.npz")[k])
                                                           for k in ("logits", "features"))), 4, generator=0),
        "coreset": lambda: kb.select_coreset(torch.from_numpy(np.load(files / "embeddings.npy")), 4, generator=0),
        "uncertainty": lambda: kb.select_uncertainty(lp, 4, score="margin" if extra else "entropy"),
        "epig": lambda: kb.select_epig(lp, torch.from_numpy(np.load(files / "targets.npy")), 4),
    }[method]()
    assert written["indices"] == expected.indices.tolist()
    assert len(written["scores"]) == 4
    assert "rank" in result.stdout


@pytest.mark.parametrize("method,name,extra", [
    ("kbald2", "log_probs.npy", ["--candidates", "candidates.npy"]),
    ("bald", "log_probs.npy", ["--candidates", "mask.npy"]),
    ("batchbald", "log_probs.npy", ["--prefilter", "least_confidence:20"]),
    ("badge", "factors.npz", ["--prefilter", "margin:20"]),
    ("badge", "factors.npz", ["--prefilter", "random:20"]),
    ("coreset", "embeddings.npy", ["--prefilter", "random:15"]),
])
def test_select_on_candidates_picks_what_the_library_picks(files, tmp_path, method, name, extra):
    import json

    import torch

    import kbald_kernels as kb

    np.save(tmp_path / "candidates.npy", np.array([30, 2, 5, 17, 11, 39, 8]))
    np.save(tmp_path / "mask.npy", np.arange(40) % 3 == 0)
    out = tmp_path / "picked.json"
    extra = [str(tmp_path / e) if e.endswith(".npy") else e for e in extra]
    result = run("select", "--method", method, "--batch-size", "4", str(files / name), "-o", str(out),
                 "--seed", "3", *extra)
    assert result.returncode == 0, result.stderr
    assert "candidates)" in result.stdout
    lp = torch.from_numpy(np.load(files / "log_probs.npy"))
    factors = np.load(files / "factors.npz")
    logits, features = (torch.from_numpy(factors[k]) for k in ("logits", "features"))
    expected = {
        "candidates.npy": lambda: kb.select_kbald(lp, 4, candidates=[30, 2, 5, 17, 11, 39, 8]),
        "mask.npy": lambda: kb.select_bald(lp, 4, candidates=np.arange(40) % 3 == 0),
        "least_confidence:20": lambda: kb.select_batchbald(
            lp, 4, generator=3, candidates=kb.candidate_subset(lp, 20, score="least_confidence")),
        "margin:20": lambda: kb.select_badge(
            kb.badge_factors(logits, features), 4, generator=3,
            candidates=kb.candidate_subset(torch.log_softmax(logits, -1)[:, None], 20, score="margin")),
        "random:20": lambda: kb.select_badge(kb.badge_factors(logits, features), 4, generator=3,
                                             candidates=kb.candidate_subset(40, 20, generator=3)),
        "random:15": lambda: kb.select_coreset(torch.from_numpy(np.load(files / "embeddings.npy")), 4,
                                               generator=3, candidates=kb.candidate_subset(40, 15, generator=3)),
    }[Path(extra[-1]).name]()
    assert json.loads(out.read_text())["indices"] == expected.indices.tolist()


@pytest.mark.slow  # two torchrun processes a case
@pytest.mark.parametrize("method,name,restrict", [
    ("kbald2", "log_probs.npy", None), ("kbald3", "log_probs.npy", "candidates"), ("batchbald", "log_probs.npy", None),
    ("badge", "factors.npz", "candidates"), ("epig", "log_probs.npy", None),
    ("uncertainty", "log_probs.npy", "margin:12"), ("badge", "factors.npz", "least_confidence:15"),
    ("coreset", "embeddings.npy", "random:10")])
def test_select_under_torchrun_picks_what_one_process_picks(files, tmp_path, method, name, restrict):
    import json
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["select", "--method", method, "--batch-size", "4", str(files / name), "--seed", "2"]
    if method == "epig":
        argv += ["--targets", str(files / "targets.npy")]
    if restrict == "candidates":  # a rank's shard may hold no candidate
        np.save(tmp_path / "candidates.npy", np.array([30, 2, 5, 11, 39, 8, 3]))
        argv += ["--candidates", str(tmp_path / "candidates.npy")]
    elif restrict:
        argv += ["--prefilter", restrict]
    alone, together = tmp_path / "alone.json", tmp_path / "together.json"
    assert run(*argv, "-o", str(alone)).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "3",
                             "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "kbald_kernels",
                             *argv, "--distributed", "-o", str(together)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "over 3 processes" in result.stdout
    assert json.loads(together.read_text())["indices"] == json.loads(alone.read_text())["indices"]


@pytest.mark.parametrize("name,args,message", [
    ("missing.npy", [], "missing.npy: no such file"),
    ("rank2.npy", [], "predictions must have shape [N, K, C], got (4, 3)"),
    ("nan.npy", [], "log_probs contains NaN at index (3, 2, 1)"),
    ("log_probs.npy", ["--batch-size", "41"], "batch_size must be between 1 and the number of selectable pool "
                                               "points (40), got 41"),
    ("garbage.npy", [], "garbage.npy: cannot read it as .npy"),
    ("factors.npz", ["--key", "weights"], "no array named 'weights'"),
    ("log_probs.npy", ["--method", "epig"], "--method epig needs --targets FILE"),
    ("log_probs.npy", ["--prefilter", "margin:41"], "size must be between 1 and"),
    ("embeddings.npy", ["--method", "badge", "--prefilter", "margin:9"], "needs an array named 'logits'"),
    ("log_probs.npy", ["--distributed"], "--distributed runs under torchrun"),
    ("log_probs.npy", ["--distributed", "--layout", "KNC"], "it takes --layout NKC or NCK"),
    ("factors.npz", ["--method", "badge", "--prefilter", "bald:9"], "--prefilter bald needs posterior samples"),
])
def test_select_reports_bad_input_in_one_line(files, name, args, message):
    argv = ["select", "--method", "bald", str(files / name)]
    argv += args if "--batch-size" in args else ["--batch-size", "3", *args]
    result = run(*argv)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_select_reads_safetensors(tmp_path):
    import torch
    from safetensors.torch import save_file

    import kbald_kernels as kb

    lp = torch.log_softmax(torch.randn(30, 5, 3), -1)
    save_file({"log_probs": lp}, str(tmp_path / "p.safetensors"))
    out = tmp_path / "picked.csv"
    result = run("select", "--method", "kbald2", "--batch-size", "3", str(tmp_path / "p.safetensors"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    rows = out.read_text().splitlines()
    assert rows[0] == "rank,index,score"
    assert [int(r.split(",")[1]) for r in rows[1:]] == kb.select_kbald(lp, 3).indices.tolist()
