"""Candidate subsets, the BADGE acceleration report's two speed-ups: every
acquisition's ``candidates=`` restricts its choice to some pool points
(:func:`kbald_kernels.candidate_subset` builds them).
"""

import torch

from .reference.workspace import workspace_bytes
from .validation import as_tensor, check_indices


def check_candidates(candidates, pool_size, device):
    """Pool indices (distinct, any order) or a boolean mask over the pool, as the sorted
    int64 pool indices on ``device``. The order given does not matter: among equal
    scores a pick goes to the smaller pool index."""
    if isinstance(candidates, (list, tuple)) and candidates and all(isinstance(v, bool) for v in candidates):
        candidates = torch.tensor(candidates)
    if isinstance(candidates, (list, tuple, range)):
        rows = check_indices(candidates, pool_size, "candidates", distinct=False)
    else:
        t, _ = as_tensor(candidates, "candidates")
        if t.dtype == torch.bool:
            if t.shape != (pool_size,):
                raise ValueError(f"candidates as a mask must have shape [{pool_size}] (one flag per pool "
                                 f"point), got {tuple(t.shape)}")
            rows = t.nonzero().view(-1)
        else:
            rows = check_indices(t, pool_size, "candidates", distinct=False)
    if rows.numel() == 0:
        raise ValueError("candidates names no pool point")
    rows = rows.to(device)
    if bool((rows[1:] > rows[:-1]).all()):  # already ascending (candidate_subset's, a mask's): distinct
        return rows
    rows = rows.sort().values
    if bool((rows[1:] == rows[:-1]).any()):  # sorted: a repeat sits next to itself
        raise ValueError("candidates contains repeated indices")
    return rows


class CandidatePool:
    """Log-probabilities ``t`` [N, K, C] restricted to ``candidates`` (None: the whole pool).

    When the candidates' rows fit the workspace (``KBALD_WORKSPACE_BYTES``) they are
    gathered once into ``t`` and no other row is read. Otherwise ``t`` stays the
    whole pool, every row is read (and must be valid), and ``excluded`` marks the
    rows no pick may take. Both give the same picks: per-point terms do not depend
    on the other rows, and ties go to the smaller pool index either way.
    """

    def __init__(self, log_probs, candidates):
        self.rows = None if candidates is None else check_candidates(candidates, log_probs.shape[0],
                                                                     log_probs.device)
        self.size = log_probs.shape[0] if self.rows is None else self.rows.numel()
        self.t, self.t_rows, self.excluded = log_probs, None, None
        if self.rows is None:
            return
        row_bytes = log_probs[0].numel() * log_probs.element_size()
        if self.size * row_bytes <= workspace_bytes():
            self.t = log_probs.index_select(0, self.rows)
            self.t_rows = self.rows
        else:
            self.excluded = torch.ones(log_probs.shape[0], dtype=torch.bool, device=log_probs.device)
            self.excluded[self.rows] = False

    def unpicked(self):
        """A fresh mask over the rows of ``t`` that no pick may take yet: the excluded ones."""
        if self.excluded is None:
            return torch.zeros(self.t.shape[0], dtype=torch.bool, device=self.t.device)
        return self.excluded.clone()

    def per_candidate(self, values):
        """Per-row values of ``t`` → one per candidate, in pool-index order."""
        return values if self.excluded is None else values.index_select(0, self.rows)

    def from_candidates(self, positions):
        """Positions among the candidates → pool indices."""
        return positions if self.rows is None else self.rows.index_select(0, positions)

    def from_rows(self, indices):
        """Rows of ``t`` → pool indices."""
        return indices if self.t_rows is None else self.t_rows.index_select(0, indices)

