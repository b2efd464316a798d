import numpy as np
import pytest
import torch

import kbald_kernels as kb

from conftest import random_log_probs


def test_layouts_and_kinds_round_trip():
    lp = random_log_probs(5, 4, 3, device="cpu", zeros=True)
    torch.testing.assert_close(kb.as_log_probs(lp.permute(0, 2, 1), layout="NCK"), lp)
    torch.testing.assert_close(kb.as_log_probs(lp.permute(1, 0, 2), layout="KNC"), lp)
    torch.testing.assert_close(kb.as_log_probs(lp.exp(), kind="probs"), lp)
    logits = torch.randn(5, 4, 3, dtype=torch.float64)
    torch.testing.assert_close(kb.as_log_probs(logits, kind="logits"), torch.log_softmax(logits, -1))
    out = kb.as_log_probs(lp.exp().permute(0, 2, 1).numpy(), layout="NCK", kind="probs")
    assert isinstance(out, np.ndarray)
    kb.bald(out)


def test_conversion_errors():
    with pytest.raises(ValueError, match="layout must be one of"):
        kb.as_log_probs(torch.zeros(2, 2, 2), layout="CNK")
    with pytest.raises(ValueError, match="kind must be"):
        kb.as_log_probs(torch.zeros(2, 2, 2), kind="scores")
    with pytest.raises(ValueError, match="negative"):
        kb.as_log_probs(-torch.ones(2, 2, 2), kind="probs")
