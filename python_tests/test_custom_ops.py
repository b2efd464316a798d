"""The op layer: every op registered under torch.ops.kbald_kernels passes opcheck,
the selections trace whole inside torch.compile(fullgraph=True) and torch.export
with the eager results bit for bit, and validation errors read the same compiled."""

import math

import pytest
import torch
from torch.library import opcheck

import kbald_kernels as kb
from kbald_kernels.library import REGISTERED, result_dtype

DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def log_probs(n, k=6, c=5, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, c, generator=g).mul(2).log_softmax(-1).to(dtype)


def embeddings(n, d, dtype=torch.float32, seed=1):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)).to(dtype)


def op_cases(dtype):
    """Arguments for every registered op: name -> list of argument tuples."""
    x = log_probs(37, dtype=dtype)
    # Normalised in the dtype's own rounding, as the kernels' callers pass them.
    h, ch, _ = torch.ops.kbald_kernels.entropies(x)
    e, hf, r = embeddings(29, 7, dtype), embeddings(29, 5, dtype, 2), embeddings(29, 3, dtype, 3)
    dist = torch.full((29,), math.inf, dtype=result_dtype(dtype))
    unpicked = torch.zeros(29, dtype=torch.bool)
    weights = torch.rand(4, 6, dtype=h.dtype).softmax(-1)
    return {
        "entropies": [(x,), (x, "torch")],
        "uncertainties": [(x,), (x, None, False)],
        "mutual_information_with_pick": [(x, h, torch.tensor([3]))],
        "kbald_pairwise_steps": [(x, h, h - ch, torch.zeros(37, dtype=torch.bool), None, 4),
                                 (x, h, h - ch, torch.zeros(37, dtype=torch.bool), 5, 2)],
        "add_triple_interactions": [(x, h, torch.rand(2, 37, dtype=h.dtype), torch.tensor([3, 5]),
                                     torch.zeros_like(h))],
        "accumulate_joint_entropy": [(weights, torch.full((4,), 0.25, dtype=h.dtype), x)],
        "kmeanspp_steps": [([e], dist.clone(), unpicked.clone(), None, 5, 0, 4, "sample"),
                           ([hf, r], dist.clone(), unpicked.clone(), 2, -7, 3, 3, "argmax")],
        "min_squared_distances": [([e], [e[:3]]), ([hf, r], [hf[:2], r[:2]])],
        "entropy": [(x,)], "conditional_entropy": [(x,)], "bald": [(x, "torch")], "least_confidence": [(x,)],
        "margin": [(x,)],
        "pairwise_mutual_information": [(x[:7], None), (x[:7], x[10:19])],
        "epig": [(x, x[:5], None), (x, x[:5], torch.rand(5, dtype=torch.float64))],
        "triple_interaction": [(x, torch.tensor([[0, 1, 2], [3, 4, 5]]))],
        "joint_entropy": [(x, torch.tensor([1, 2]), None, None), (x, torch.tensor([1, 2, 4]), 20, 3)],
        "select_bald": [(x, 4, None), (x, 3, torch.tensor([1, 4, 6, 9, 30]))],
        "select_stochastic_bald": [(x, 4, "softmax", 0.5, 3, None), (x, 4, "power", 1.0, -3, torch.arange(20))],
        "select_uncertainty": [(x, 4, "margin", None), (x, 4, "entropy", torch.arange(37) % 2 == 0)],
        "select_kbald": [(x, 4, 1, None), (x, 4, 2, None), (x, 4, 3, torch.arange(3, 30))],
        "select_batchbald": [(x, 3, 100, 5, None), (x, 3, 7, 2, torch.arange(1, 20))],
        "select_epig": [(x, x[:5], 3, "top", 1.0, None, None, None),
                        (x, x[:5], 3, "softrank", 2.0, 4, torch.rand(5, dtype=torch.float64), torch.arange(9))],
        "candidate_subset": [(x, 7, "bald", None), (x, 7, "random", 11)],
        "random_subset": [(100, 7, 3)],
        "kmeanspp": [([e], 5, 1, "random", None, [], None, None), ([e], None, 1, "random", None, [], None, None)],
        "select_badge": [([hf, r], 5, 1, "max_norm", torch.tensor([1, 2]), [], None, None)],
        "select_coreset": [([e], 5, 1, "random", None, [e[:3] + 1], None, None),
                           ([hf, r], 4, None, "random", torch.tensor([0]), [], torch.arange(10), None)],
    }


def test_every_registered_op_has_an_opcheck_case():
    assert set(op_cases(torch.float32)) == set(REGISTERED)
    assert all(str(op._schema.name).split("::")[0] == "kbald_kernels" for op in REGISTERED.values())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_opcheck(name, dtype):
    """Schema (mutations declared), fake tensors (shapes, dtypes, strides), autograd
    registration and AOT dispatch with dynamic shapes, for each op."""
    for args in op_cases(dtype)[name]:
        results = opcheck(REGISTERED[name], args)
        assert set(results.values()) == {"SUCCESS"}, results


def _on(device, value):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_on(device, v) for v in value)
    return value


@pytest.mark.gpu_smoke
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA tensors need a CUDA device")
def test_opcheck_and_fullgraph_on_cuda_tensors():
    """Every op's opcheck, and every selection compiled against eager, on CUDA tensors
    (the Triton and CUDA kernels inside the ops)."""
    for name, cases in op_cases(torch.float32).items():
        for args in cases:
            results = opcheck(REGISTERED[name], _on("cuda", args))
            assert set(results.values()) == {"SUCCESS"}, (name, results)
    lp = log_probs(41).cuda()
    for name, fn in SELECTIONS.items():
        _assert_identical(_compiled(fn)(lp), fn(lp))


def _compiled(fn, backend="inductor"):
    torch._dynamo.reset()
    return torch.compile(fn, fullgraph=True, backend=backend)


def _assert_identical(compiled, eager):
    assert type(compiled) is type(eager)
    for c, e in zip(compiled if isinstance(compiled, tuple) else (compiled,),
                    eager if isinstance(eager, tuple) else (eager,)):
        assert c.dtype == e.dtype and c.shape == e.shape
        assert torch.equal(c, e) or (c.dtype.is_floating_point and torch.equal(c.isnan(), e.isnan())
                                     and torch.equal(c.nan_to_num(), e.nan_to_num()))


# Each selection with a batch size known from its arguments: the whole function must be one graph.
SELECTIONS = {
    "select_bald": lambda lp: kb.select_bald(lp, 5),
    "select_bald_candidates": lambda lp: kb.select_bald(lp, 4, candidates=[2, 3, 5, 8, 13, 21]),
    "select_stochastic_bald": lambda lp: kb.select_stochastic_bald(lp, 5, method="softrank", generator=7),
    "select_uncertainty": lambda lp: kb.select_uncertainty(lp, 5, score="least_confidence"),
    "select_kbald_1": lambda lp: kb.select_kbald(lp, 5, order=1),
    "select_kbald_2": lambda lp: kb.select_kbald(lp, 5, order=2),
    "select_kbald_3": lambda lp: kb.select_kbald(lp, 4, order=3),
    "select_batchbald": lambda lp: kb.select_batchbald(lp, 3, num_samples=50, generator=3),
    "select_epig": lambda lp: kb.select_epig(lp, lp[:6], 4, method="power", generator=1),
    "candidate_subset": lambda lp: kb.candidate_subset(lp, 9, score="margin"),
    "candidate_subset_random": lambda lp: kb.candidate_subset(lp, 9, generator=4),
    "kmeanspp": lambda lp: kb.kmeanspp(lp.flatten(1), 5, generator=2),
    "select_badge": lambda lp: kb.select_badge((lp[:, 0], lp[:, 1].exp() - 0.5), 5, generator=2),
    "select_coreset": lambda lp: kb.select_coreset(lp.flatten(1), 5, labeled=[0, 4]),
    "bald_and_pairwise": lambda lp: (kb.bald(lp), kb.pairwise_mutual_information(lp[:4], lp[4:9])),
}


@pytest.mark.slow  # torch.compile of whole selections: the slow tier
@pytest.mark.parametrize("name", sorted(SELECTIONS))
def test_selection_compiles_as_one_graph_with_eager_results(name):
    lp = log_probs(41)
    _assert_identical(_compiled(SELECTIONS[name])(lp), SELECTIONS[name](lp))


@pytest.mark.slow  # torch.compile of whole selections: the slow tier
@pytest.mark.parametrize("name", ["select_kbald_2", "select_batchbald", "select_badge", "bald_and_pairwise"])
def test_scoring_and_selecting_is_one_graph(name):
    """Log-probabilities from logits and the selection, in one graph. Run by aten as
    eager runs it, the results are eager's bit for bit; inductor's fused log_softmax
    may round differently, and the picks stay the same."""
    logits = torch.randn(41, 6, 5, generator=torch.Generator().manual_seed(5))

    def fn(logits):
        return SELECTIONS[name](logits.log_softmax(-1))

    eager = fn(logits)
    _assert_identical(_compiled(fn, backend="aot_eager")(logits), eager)
    inductor = _compiled(fn)(logits)
    if isinstance(eager, kb.Selection):
        assert torch.equal(inductor.indices, eager.indices)
    for got, want in zip(inductor, eager):
        torch.testing.assert_close(got.double(), want.double(), rtol=1e-5, atol=1e-6)


def test_compiled_selection_recompiles_for_new_arguments_without_graph_breaks():
    lp = log_probs(30)
    compiled = _compiled(lambda lp, b: kb.select_kbald(lp, b))
    for b in (2, 3, 4):
        _assert_identical(compiled(lp, b), kb.select_kbald(lp, b))


@pytest.mark.parametrize("bad, message", [
    (lambda lp: lp.exp(), "is not normalised"),
    (lambda lp: lp.index_put((torch.tensor([3]), torch.tensor([1]), torch.tensor([2])), torch.tensor(math.nan)),
     "contains NaN at index (3, 1, 2)"),
])
@pytest.mark.parametrize("call", [lambda lp: kb.bald(lp), lambda lp: kb.select_kbald(lp, 3),
                                  lambda lp: kb.select_batchbald(lp, 2, generator=0)],
                         ids=["bald", "kbald", "batchbald"])
def test_validation_errors_are_the_same_compiled(bad, message, call):
    lp = bad(log_probs(20))
    with pytest.raises(ValueError) as eager:
        call(lp)
    with pytest.raises(ValueError) as compiled:
        _compiled(call)(lp)
    assert message in str(eager.value)
    assert str(compiled.value) == str(eager.value)


@pytest.mark.parametrize("call, message", [
    (lambda lp: kb.select_bald(lp, 9), r"between 1 and the number of selectable pool points \(6\), got 9"),
    (lambda lp: kb.select_stochastic_bald(lp, 2, method="bad"), "method must be one of"),
    (lambda lp: kb.select_stochastic_bald(lp, 2, temperature=-1.0), "temperature must be a positive finite"),
    (lambda lp: kb.select_uncertainty(lp, 2, score="bad"), "score must be one of"),
    (lambda lp: kb.select_kbald(lp, 2, order=4), "order must be 1, 2 or 3, got 4"),
    (lambda lp: kb.select_batchbald(lp, 2, num_samples=0), "num_samples must be a positive integer"),
    (lambda lp: kb.kmeanspp(lp[:, 0], 2, first="middle"), "first must be one of"),
    (lambda lp: kb.select_bald(lp, 2, candidates=[1, 99]), r"candidates\[1\] = 99 is outside the pool"),
])
def test_argument_errors_are_the_same_compiled(call, message):
    """Argument values the op checks raise the same ValueError compiled or not."""
    lp = log_probs(6)
    with pytest.raises(ValueError, match=message) as eager:
        call(lp)
    with pytest.raises(ValueError, match=message) as compiled:
        _compiled(call)(lp)
    assert str(compiled.value) == str(eager.value)


@pytest.mark.parametrize("call, error, message", [
    (lambda lp: kb.select_bald(lp, 2.0), TypeError, "batch_size must be an integer, got float"),
    (lambda lp: kb.select_stochastic_bald(lp, 2, method=None), ValueError, "method must be one of"),
    (lambda lp: kb.select_stochastic_bald(lp, 2, temperature="hot"), ValueError, "temperature must be a positive"),
    (lambda lp: kb.joint_entropy(lp, [1, 2], num_samples=True), ValueError, "num_samples must be a positive"),
    (lambda lp: kb.joint_entropy(lp, [1, 2], num_samples=2.0), ValueError, "num_samples must be a positive"),
    (lambda lp: kb.kmeanspp(lp[:, 0], 2, first=None), ValueError, "first must be one of"),
    (lambda lp: kb.select_kbald(lp, 2, order="2"), ValueError, "order must be 1, 2 or 3"),
])
def test_python_argument_errors_keep_their_eager_types(call, error, message):
    """What the schema cannot carry is refused before the op with the op's own message."""
    with pytest.raises(error, match=message):
        call(log_probs(6))


def test_arguments_the_op_ignores_or_converts_are_taken_as_before():
    lp = log_probs(12)
    assert torch.equal(kb.select_epig(lp, lp[:3], 2, temperature=None).indices, kb.select_epig(lp, lp[:3], 2).indices)
    assert torch.equal(kb.kmeanspp(lp[:, 0], 3, generator=1, progress="no").indices,
                       kb.kmeanspp(lp[:, 0], 3, generator=1).indices)
    assert torch.equal(kb.select_kbald(lp, 3, order=2.0).indices, kb.select_kbald(lp, 3).indices)


class _Scores(torch.nn.Module):
    def forward(self, logits, target_logits):
        lp, targets = logits.log_softmax(-1), target_logits.log_softmax(-1)
        return kb.bald(lp), kb.epig(lp, targets)


def test_export_of_a_module_returning_bald_and_epig():
    logits, targets = torch.randn(23, 6, 4), torch.randn(7, 6, 4)
    exported = torch.export.export(_Scores(), (logits, targets))
    ops = {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}
    assert {"kbald_kernels.bald.default", "kbald_kernels.epig.default"} <= ops
    for got, want in zip(exported.module()(logits, targets), _Scores()(logits, targets)):
        assert torch.equal(got, want)


@pytest.mark.parametrize("backend", [None, "torch"])
def test_ops_have_no_gradient_eager_or_compiled(backend):
    """The ops are not differentiable: autograd falls through and the kernel runs under
    no_grad, so the reference's torch ops record nothing either."""
    lp = log_probs(9).requires_grad_()
    for call in (lambda x: kb.bald(x, backend=backend), lambda x: kb.select_bald(x, 3, backend=backend).scores,
                 lambda x: kb.pairwise_mutual_information(x[:3], backend=backend)):
        assert not call(lp).requires_grad
        assert not _compiled(call)(lp).requires_grad


@pytest.mark.slow  # torch.compile of whole selections: the slow tier
@pytest.mark.parametrize("call", [lambda lp: kb.select_kbald_dynamic(lp, 6, tolerance=0.05),
                                  lambda lp: kb.select_conservative_bald(lp, 6, threshold=0.02)],
                         ids=["dynamic", "conservative"])
def test_data_dependent_selections_graph_break_and_still_match_eager(call):
    """Their batch size is decided on the device as they go: not one op, so
    fullgraph refuses them, and a compile with graph breaks gives eager's batch
    (the torch arithmetic between the ops, fused by inductor, may round otherwise)."""
    lp = log_probs(30)
    with pytest.raises(torch._dynamo.exc.Unsupported):
        _compiled(call)(lp)
    torch._dynamo.reset()
    compiled = torch.compile(call)(lp)
    eager = call(lp)
    assert torch.equal(compiled.indices, eager.indices)
    for got, want in zip(compiled[1:], eager[1:]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
