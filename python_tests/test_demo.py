"""``kbald`` (the demo) and the naive torch baselines it and the benchmarks time the package against."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import demo
from kbald_kernels.naive import (dense_of, naive_bald, naive_batchbald, naive_kbald2, naive_kmeanspp,
                                 naive_pairwise_mi)


def _pool(n=60, k=12, c=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, c, generator=gen) * 2 + torch.randn(n, 1, c, generator=gen) * 2
    return torch.log_softmax(logits.double(), -1)


def test_naive_scores_are_the_package_s():
    lp = _pool()
    torch.testing.assert_close(naive_bald(lp), kb.bald(lp))
    torch.testing.assert_close(naive_pairwise_mi(lp[:7], lp), kb.pairwise_mutual_information(lp[:7], lp))


def test_naive_kbald2_picks_what_the_package_picks():
    lp = _pool(seed=1)
    assert naive_kbald2(lp, 8) == kb.select_kbald(lp, 8).indices.tolist()


def test_naive_batchbald_picks_what_the_package_picks():
    lp = _pool(n=40, k=10, c=3, seed=2)
    # Exact throughout: 3^5 configurations at the last pick.
    assert naive_batchbald(lp, 6, 10_000) == kb.select_batchbald(lp, 6, num_samples=10_000).indices.tolist()
    # 3^6 = 729 > 500 configurations: the eighth pick scores sampled ones; the first seven are exact in both.
    picks = naive_batchbald(lp, 8, 500, torch.Generator().manual_seed(0))
    assert picks[:7] == kb.select_batchbald(lp, 8, num_samples=500, generator=0).indices.tolist()[:7]
    assert len(set(picks)) == 8


def test_naive_kmeanspp_draws_by_squared_distance():
    gen = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [1000.0, 0.0], [0.0, 1000.0], [1000.0, 1000.0]])
    x = (centers[:, None] + 0.01 * torch.randn(4, 50, 2, generator=gen)).reshape(-1, 2)
    picks = naive_kmeanspp(x, 4, torch.Generator().manual_seed(3))
    # A point of a cluster already holding a center is ~1e10 times less likely than one of a new cluster.
    assert sorted(p // 50 for p in picks) == [0, 1, 2, 3]


def test_dense_of_is_each_point_s_outer_product():
    features, residuals = torch.randn(5, 3), torch.randn(5, 4)
    dense = dense_of(features, residuals)
    for i in range(5):
        torch.testing.assert_close(dense[i], torch.outer(features[i], residuals[i]).reshape(-1))


def test_repeated_digits_are_noisy_copies_with_clean_test_images():
    split = demo.repeated_digits(1)
    n = len(split.y_pool) // demo.COPIES
    assert len(split.y_pool) == demo.COPIES * n and len(split.x_test) == 400 and len(split.x_targets) == 200
    copies = split.x_pool.reshape(demo.COPIES, n, -1)
    assert torch.equal(split.y_pool.reshape(demo.COPIES, n)[0], split.y_pool.reshape(demo.COPIES, n)[2])
    noise = (copies[1] - copies[0]).std() / 2**0.5
    assert abs(float(noise) - demo.NOISE_STD) < 0.005
    assert split.start.max() < n and torch.bincount(split.y_pool[split.start]).tolist() == [2] * 10
    # The test images are the clean digits' first 400 of this seed's shuffle, none of them in the pool.
    x, _ = demo._digits(1)
    assert torch.equal(split.x_test, x[:400])


def test_networks_trained_together_are_the_networks_trained_alone():
    split = demo.repeated_digits(0)
    x = torch.stack([split.x_pool[:30], split.x_pool[100:130]])
    y = torch.stack([split.y_pool[:30], split.y_pool[100:130]])
    together = demo._train(x, y, 25, [0, 1], "cpu", dropout=0.0)
    for b, seed in enumerate((0, 1)):
        alone = demo._train(x[b : b + 1], y[b : b + 1], 25, [seed], "cpu", dropout=0.0)
        for w_together, w_alone in zip(together.parameters(), alone.parameters()):
            torch.testing.assert_close(w_together[b], w_alone[0], rtol=1e-4, atol=1e-5)
    # Different seeds start (and so end) as different networks.
    assert not torch.allclose(together.weights[0][0], together.weights[0][1])


def test_mc_dropout_samples_apply_one_mask_to_every_input():
    split = demo.repeated_digits(0)
    nets = demo._train(split.x_pool[None, :40], split.y_pool[None, :40], 20, [0], "cpu")
    x = split.x_pool[:6]
    lp = demo._mc_log_probs(nets, 0, torch.cat([x, x]), 16, seed=5)
    assert lp.shape == (12, 16, 10)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(12, 16))
    # Sample k is one network: the same input gets the same prediction under it...
    torch.testing.assert_close(lp[:6], lp[6:])
    # ...and the samples differ from each other.
    assert (lp[:, 1:] - lp[:, :1]).abs().amax() > 1e-3
    torch.testing.assert_close(lp, demo._mc_log_probs(nets, 0, torch.cat([x, x]), 16, seed=5))


def test_summary_is_the_mean_over_the_curve_per_seed():
    curves = {"random": {"labels": [20, 30, 40], "accuracy": [[0.5, 0.6, 0.7], [0.5, 0.7, 0.9]],
                         "predict_s": [[0.0, 0.0], [0.0, 0.0]], "select_s": [[0.0, 0.0], [0.0, 0.0]]},
              "bald": {"labels": [20, 30, 40], "accuracy": [[0.5, 0.5, 0.5], [0.5, 0.6, 0.7]],
                       "predict_s": [[0.1, 0.1], [0.1, 0.1]], "select_s": [[0.2, 0.2], [0.002, 0.004]]}}
    stats = demo.summary(curves)
    assert stats["random"] == pytest.approx((65.0, 5.0, 80.0, 10.0))
    assert stats["bald"] == pytest.approx((55.0, 5.0, 60.0, 10.0))
    text = demo.format_curves(curves, "cpu")
    assert "BALD -10.0 points (on average -10.0); behind or level with random: BALD." in text
    # The first round's times (warm-up) are left out: 3 ms, not 51.5 ms.
    assert re.search(r"BALD\s+55\.0 ± 5\.0 %\s+60\.0 ± 10\.0 %\s+3\.0 ms\s+100\.0 ms\s+host C\+\+", text)


def run(*args):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run([sys.executable, "-m", "kbald_kernels", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def _number(text):
    return float(text.replace("~", "").replace("x", "").replace("%", ""))


def _seconds(text):
    """(seconds, half the last printed digit in seconds) of a printed time."""
    value, unit = text.replace("~", "").split()
    digits = len(value.partition(".")[2])
    scale = 1e-3 if unit == "ms" else 1
    return float(value) * scale, 0.5 * 10 ** -digits * scale


def test_quick_demo_reports_curves_claim_and_timing_that_follow_from_its_numbers(tmp_path):
    plot = tmp_path / "curves.png"
    result = run("--quick", "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "repeated digits" in lines[0] and "2 seeds" in lines[0]
    header = next(i for i, line in enumerate(lines) if line.startswith("labels"))
    assert lines[header].split()[1:] == ["random", "BALD", "2-BALD", "BatchBALD", "BADGE"]
    rows = [line for line in lines[header + 2 :] if line.strip()[:2].isdigit()][:3]
    assert [int(r.split()[0]) for r in rows] == [20, 30, 40]
    means = np.array([[float(v) for v in re.findall(r"(\d+\.\d) ±", r)] for r in rows])  # [rounds, methods]
    assert means.shape == (3, 5) and ((0 < means) & (means <= 100)).all()
    # Every method starts from the same network of each seed.
    assert len(set(means[0])) == 1
    # The summary's mean over the curve is the mean of the rows above (each rounded to 0.1).
    summary = {line.split()[0]: float(line.split()[1]) for line in lines
               if line.split()[:1] in (["random"], ["BALD"], ["2-BALD"], ["BatchBALD"], ["BADGE"])
               and "%" in line}
    for column, name in enumerate(["random", "BALD", "2-BALD", "BatchBALD", "BADGE"]):
        assert summary[name] == pytest.approx(means[:, column].mean(), abs=0.1)
    # The claim's differences and average are the summary's.
    claim = next(line for line in lines if line.startswith("Mean over the curve against random"))
    deltas = {n: float(d) for n, d in re.findall(r"(BALD|2-BALD|BatchBALD|BADGE) ([+-]\d+\.\d)", claim)}
    for name, delta in deltas.items():
        assert delta == pytest.approx(summary[name] - summary["random"], abs=0.11)
    average = float(re.search(r"on average ([+-]\d+\.\d)", claim).group(1))
    assert average == pytest.approx(np.mean(list(deltas.values())), abs=0.06)
    assert ("every active method ahead of random" in claim) == (min(deltas.values()) > 0)
    # The timing table: each selection, the path that ran, and a speed-up that is naive / package.
    start = next(i for i, line in enumerate(lines) if line.startswith("Selection time"))
    assert "N=2 000" in lines[start]
    table = [re.split(r"\s{2,}", line.strip()) for line in lines[start + 3 : start + 7]]
    assert [r[0].split(",")[0] for r in table] == ["BALD top-10", "2-BALD", "BatchBALD", "BADGE"]
    for name, ran_on, ours, naive, speed_up, how in table:
        assert ran_on == "host C++"
        # Within what the printed digits allow: both times and the ratio are rounded.
        (naive_s, naive_err), (ours_s, ours_err) = _seconds(naive), _seconds(ours)
        low, high = (naive_s - naive_err) / (ours_s + ours_err), (naive_s + naive_err) / max(ours_s - ours_err, 1e-12)
        assert low - 0.05 <= _number(speed_up) <= high + 0.05, (name, ours, naive, speed_up)
    assert table[2][3].startswith("~") and "scaled by 10" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,message", [
    (["--methods", "bald,magic"], "--methods takes a comma-separated subset of"),
    (["--timing-pool", "500"], "--timing-pool must be 0 (no timing table) or at least 1000"),
])
def test_demo_rejects_bad_arguments_in_one_line(args, message):
    result = run(*args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
