"""k-means++ (BADGE) and k-center greedy (CORESET) orderings of a pool.

One ordering object drives every variant: a fixed batch is its first k picks, a
full priority ordering is all of them, and the lazy form hands out picks one at a
time while new pool points arrive.
"""

import math
import sys
from typing import Optional

import torch

from ..backends import implementation
from ..candidates import check_candidates
from ..reference import DenseEmbeddings, FactoredEmbeddings
from ..reference.workspace import workspace_bytes
from ..library import (as_selection, candidates_argument, choice_argument, custom_op, fake_selection, fresh,
                       index_argument, integer_argument, result_dtype, seed_argument, seed_value)
from ..selection import Selection
from ..validation import (
    as_tensor,
    check_batch_size,
    check_embedding_values,
    check_embeddings,
    check_embeddings_form,
    check_indices,
    check_same_device,
    embedding_parts,
    gather_embedding_rows,
    seed_from,
    to_output,
)

FIRST_CHOICES = ("random", "max_norm")
MODES = ("sample", "argmax")


def _wrap(tensors):
    return DenseEmbeddings(tensors[0]) if len(tensors) == 1 else FactoredEmbeddings(*tensors)


def _parts(embeddings):
    """The tensors of dense embeddings or of BADGE factors: :func:`_wrap` undone."""
    return [embeddings.x] if isinstance(embeddings, DenseEmbeddings) else [embeddings.features, embeddings.residuals]


def _shape_signature(tensors):
    return tuple(t.shape[1] for t in tensors)


def badge_factors(logits, features):
    """BADGE's gradient-embedding factors from last-layer ``logits`` [N, C] and ``features`` [N, H].

    The gradient of the cross-entropy at the predicted label w.r.t. the last layer
    is ``(softmax(logits) - onehot(argmax)) ⊗ features``; this returns
    ``(features, residuals)`` for the factored distance, never the N × H·C matrix.
    """
    lg, np_in = as_tensor(logits, "logits")
    ft, _ = as_tensor(features, "features")
    for t, name, axis in ((lg, "logits", "C"), (ft, "features", "H")):
        if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
            raise ValueError(f"{name} must have shape [N, {axis}] with N, {axis} >= 1, got {tuple(t.shape)}")
        if not t.dtype.is_floating_point:
            raise TypeError(f"{name} must be floating point, got {t.dtype}")
    if lg.shape[0] != ft.shape[0]:
        raise ValueError(f"logits have {lg.shape[0]} rows but features have {ft.shape[0]}")
    check_same_device(features=ft, logits=lg)
    check_embeddings((ft, lg), "(features, logits)")
    probs = torch.softmax(lg.to(torch.promote_types(lg.dtype, torch.float32)), -1)
    residuals = probs - torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[1]).to(probs.dtype)
    return to_output(ft, np_in), to_output(residuals.to(ft.dtype), np_in)


class KMeansPPOrdering:
    """A lazy k-means++ (``mode="sample"``) or k-center greedy (``mode="argmax"``) ordering.

    ``embeddings``: dense [N, D] or BADGE factors ``(features [N, H], residuals [N, C])``.
    ``labeled``: pool indices (taken as centers, never returned) or embeddings of the
    same kind for points outside the pool. ``first``: without centers, the first
    pick is uniform ("random") or the largest-norm point ("max_norm", as BADGE).
    ``generator``: int seed or torch.Generator; picks depend only on (seed, step, index).
    ``candidates``: pool indices or a boolean mask of the points that may be picked
    (default: all; points added by ``extend`` may be picked too). Only the candidates'
    embeddings are read (and labeled points'): when they fit the workspace
    (``KBALD_WORKSPACE_BYTES``) they are gathered once and the ordering runs over that
    copy, else it reads them in place. Both give the same picks: draws are keyed by
    pool index, ties go to the smaller one.

    ``next(ordering)`` gives ``(index, score)`` with score the pick's squared distance
    to its nearest center at that time (+inf before any center); ``take(n)`` gives
    a :class:`Selection`; ``extend(points)`` adds pool points; ``state_dict()`` and
    ``load_state_dict()`` resume an ordering exactly.
    """

    # The pool index of each row of the ordering's embeddings (ascending), when they
    # are a gathered copy of the candidates' rows (and points added since); None: the rows are the pool.
    _pool_indices = None

    def __init__(self, embeddings, *, generator=None, first="random", labeled=None, mode="sample",
                 candidates=None, backend=None):
        if first not in FIRST_CHOICES:
            raise ValueError(f"first must be one of {FIRST_CHOICES}, got {first!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        tensors, self._numpy = check_embeddings_form(embeddings)
        self._pool_size = tensors[0].shape[0]
        # With candidates only their rows are read (and so validated), and labeled rows as they are taken.
        self._candidate_rows = None if candidates is None else check_candidates(candidates, self._pool_size,
                                                                                tensors[0].device)
        self._source = _wrap(tensors)  # the pool as given: labeled rows are read from it
        self._embeddings = self._source
        rows = None if self._candidate_rows is None or self._candidate_rows.numel() == self._pool_size else (
            self._candidate_rows)
        if rows is not None and rows.numel() * sum(t.shape[1] * t.element_size() for t in tensors) <= workspace_bytes():
            self._embeddings = _wrap(gather_embedding_rows(tensors, rows))
            self._pool_indices, rows = rows, None
        else:
            check_embedding_values(tensors, rows=rows)
        self._signature = _shape_signature(tensors)
        self._first = first
        self._mode = mode
        self._seed = seed_from(generator)
        self._steps = implementation("kmeanspp_steps", backend, self._embeddings.device, strict=False)
        self._min_distances_to = implementation("min_squared_distances", backend, self._embeddings.device,
                                                strict=False)
        n = len(self._embeddings)
        device = self._embeddings.device
        self._selected = torch.zeros(n, dtype=torch.bool, device=device)
        self._min_distances = torch.full((n,), math.inf, dtype=self._embeddings.dtype, device=device)
        self._picked = []  # pool indices, in pick order
        self._labeled_indices = []
        self._external = None
        self._newest = None  # the newest pick's row: the others' distances to it are not applied yet
        self._step = 0
        if labeled is not None:
            self._add_labeled(labeled)
        if rows is not None:  # read in place: the rows outside the candidates are never drawn
            excluded = torch.ones(n, dtype=torch.bool, device=device)
            excluded[rows] = False
            self._selected |= excluded
        self._remaining = int((~self._selected).sum())

    def _add_labeled(self, labeled):
        if labeled_as_indices(labeled):
            idx = check_indices(labeled, len(self), "labeled")
            self._labeled_indices = idx.tolist()
            self._take_labeled(idx)
        else:
            tensors, _ = check_embeddings(labeled, "labeled")
            self._check_kind(tensors, "labeled")
            self._external = _wrap(tensors)
            self._apply(self._min_distances_to(self._embeddings, self._external))

    def _take_labeled(self, idx):
        """Pool points ``idx`` (an int64 tensor) become centers, never picked."""
        if not len(idx):
            return
        idx = idx.to(self._selected.device)
        if self._candidate_rows is not None:
            check_embedding_values(_parts(self._source), rows=idx.unique())
        if self._pool_indices is None:
            self._selected[idx] = True
        else:
            rows = torch.searchsorted(self._pool_indices, idx).clamp_max(len(self._pool_indices) - 1)
            self._selected[rows[self._pool_indices[rows] == idx]] = True
        self._apply(self._min_distances_to(self._embeddings, self._source.take(idx)))

    def _rows_of(self, indices):
        """Rows of the ordering's embeddings holding pool points ``indices`` (a list),
        which it holds: picks."""
        index = torch.tensor(indices, dtype=torch.int64, device=self._selected.device)
        return index if self._pool_indices is None else torch.searchsorted(self._pool_indices, index)

    def _centers(self):
        """Embeddings of the picks and labeled pool points so far (None: none)."""
        parts = []
        if self._picked:
            parts.append(self._embeddings.take(self._rows_of(self._picked)))
        if self._labeled_indices:
            parts.append(self._source.take(torch.tensor(self._labeled_indices, device=self._selected.device)))
        return parts[0].cat(parts[1]) if len(parts) == 2 else (parts[0] if parts else None)

    def _apply(self, distances):
        """Lower the running distances to ``distances`` [N] where those are smaller."""
        torch.minimum(self._min_distances, distances.to(self._min_distances.dtype), out=self._min_distances)

    def _check_kind(self, tensors, name):
        if _shape_signature(tensors) != self._signature:
            raise ValueError(f"{name} must be embeddings of the same kind and widths as the pool "
                             f"({self._signature}), got {_shape_signature(tensors)}")
        if tensors[0].device != self._embeddings.device:
            raise ValueError(f"{name} is on {tensors[0].device} but the pool is on {self._embeddings.device}")

    @property
    def remaining(self):
        """Pool points that may still be picked: not picked, labeled, or outside the candidates."""
        return self._remaining

    def __len__(self):
        return self._pool_size

    def __iter__(self):
        return self

    def __next__(self):
        if self.remaining == 0:
            raise StopIteration
        indices, scores = self._advance(1)
        return int(indices[0]), scores[0]

    def _advance(self, n):
        """Make ``n`` picks (n <= remaining); (indices, scores) tensors on the pool's device."""
        picks, scores = [], []
        if self._first == "max_norm" and self._newest is None and bool(torch.isinf(self._min_distances).all()):
            norms = self._embeddings.squared_norms(~self._selected)
            first = int(torch.argmax(norms))
            self._selected[first] = True
            picks.append(self._record(torch.tensor([first], dtype=torch.int64, device=self._selected.device)))
            scores.append(self._min_distances[first : first + 1].clone())
            n -= 1
        if n:
            indices, step_scores = self._steps(self._embeddings, self._min_distances, self._selected, self._newest,
                                               self._seed, self._step, n, self._mode, self._pool_indices)
            picks.append(self._record(indices))
            scores.append(step_scores)
        return torch.cat(picks) if len(picks) > 1 else picks[0], torch.cat(scores) if len(scores) > 1 else scores[0]

    def _record(self, rows):
        """Picks ``rows`` (an int64 tensor of rows of the ordering's embeddings) made; their pool indices."""
        rows_list = rows.tolist()  # one read back to the host, as before (two with candidates)
        picked = rows if self._pool_indices is None else self._pool_indices[rows]
        self._picked.extend(rows_list if self._pool_indices is None else picked.tolist())
        self._remaining -= len(rows)
        self._newest = rows_list[-1]
        self._step += len(rows)
        return picked

    def take(self, n, *, progress=None):
        """The next ``n`` picks as a Selection; ``progress`` shows a bar (default: on a terminal, n > 1000)."""
        n = check_batch_size(n, self.remaining, "n")
        if progress is None:
            progress = n > 1000 and sys.stderr.isatty()
        if not progress:
            indices, scores = self._advance(n)
        else:
            from tqdm.auto import tqdm

            parts = []
            with tqdm(total=n, desc="k-means++" if self._mode == "sample" else "k-center", unit="pick") as bar:
                while n:
                    chunk = min(n, 256)
                    parts.append(self._advance(chunk))
                    bar.update(chunk)
                    n -= chunk
            indices = torch.cat([p[0] for p in parts])
            scores = torch.cat([p[1] for p in parts])
        return Selection(to_output(indices, self._numpy), to_output(scores, self._numpy))

    def extend(self, points):
        """Add pool points (same kind and widths); their distances are to every center so far.

        The ordering keeps the pool as one tensor, so this copies the old and new
        points into a new one (the caller's tensors are left as they are)."""
        tensors, _ = check_embeddings(points, "points")
        self._check_kind(tensors, "points")
        new = _wrap(tensors)
        distances = torch.full((len(new),), math.inf, dtype=self._embeddings.dtype, device=self._embeddings.device)
        centers = self._centers()
        if centers is not None:
            distances = torch.minimum(distances, self._min_distances_to(new, centers))
        if self._external is not None:
            distances = torch.minimum(distances, self._min_distances_to(new, self._external))
        # The old points' distances still await the newest center (the next step
        # applies it); the new points already include it, so that min leaves them as they are.
        self._embeddings = self._embeddings.cat(new)
        self._min_distances = torch.cat([self._min_distances, distances])
        self._selected = torch.cat([self._selected, torch.zeros(len(new), dtype=torch.bool, device=distances.device)])
        if self._pool_indices is not None:
            self._pool_indices = torch.cat([self._pool_indices, torch.arange(
                self._pool_size, self._pool_size + len(new), device=self._pool_indices.device)])
        self._pool_size += len(new)
        self._remaining += len(new)

    def state_dict(self):
        """Everything needed to resume, on the CPU; the pool itself is not included.
        Per pool point, whether the candidates were gathered or not: a state resumes
        in either kind of ordering."""
        min_distances, selected, newest = self._min_distances.cpu(), self._selected.cpu(), self._newest
        if self._pool_indices is not None:
            rows = self._pool_indices.cpu()
            min_distances = torch.full((self._pool_size,), math.inf, dtype=min_distances.dtype).index_copy_(
                0, rows, min_distances)
            selected = torch.ones(self._pool_size, dtype=torch.bool).index_copy_(0, rows, selected)
            newest = None if newest is None else int(rows[newest])
        state = {
            "num_points": len(selected),
            "seed": self._seed,
            "step": self._step,
            "first": self._first,
            "mode": self._mode,
            "picked": list(self._picked),
            "labeled_indices": list(self._labeled_indices),
            "newest": newest,
            "min_distances": min_distances.clone(),
            "selected": selected.clone(),
        }
        if self._external is not None:
            state["external"] = [t.cpu() for t in _parts(self._external)]
        return state

    def load_state_dict(self, state):
        """Resume from :meth:`state_dict` on an ordering built over the same pool (after
        any extends). An ordering that gathered its candidates takes only a state whose
        selectable points are among them."""
        # The state's per-point arrays: one per pool point, or per row of a sharded ordering's own.
        points = len(self._selected) if self._pool_indices is None else self._pool_size
        if state["num_points"] != points:
            raise ValueError(f"the state is for a pool of {state['num_points']} points, "
                             f"this ordering has {points}")
        device = self._embeddings.device
        picked, labeled = list(state["picked"]), list(state["labeled_indices"])
        if "selected" in state:
            selected = state["selected"].to(device)
        else:  # saved before candidates existed: the picks and the labeled points
            selected = torch.zeros(points, dtype=torch.bool, device=device)
            if picked + labeled:
                selected[torch.tensor(picked + labeled, device=device)] = True
        min_distances = state["min_distances"].to(device=device, dtype=self._embeddings.dtype)
        newest = state["newest"]
        if self._pool_indices is not None:
            outside = ~selected
            outside[self._pool_indices] = False
            if bool(outside.any()):
                raise ValueError(f"the state may still pick pool point {int(outside.nonzero()[0])}, which is not "
                                 "among this ordering's candidates")
            selected, min_distances = selected[self._pool_indices], min_distances[self._pool_indices]
            newest = None if newest is None else int(torch.searchsorted(self._pool_indices.cpu(), newest))
        self._seed, self._step = int(state["seed"]), int(state["step"])
        self._first, self._mode = state["first"], state["mode"]
        self._picked, self._labeled_indices, self._newest = picked, labeled, newest
        self._min_distances, self._selected = min_distances.clone(), selected.clone()
        self._remaining = int((~self._selected).sum())
        self._external = _wrap([t.to(device) for t in state["external"]]) if "external" in state else None


def picks_wanted(k, remaining, name):
    """``k`` checked against the ``remaining`` points; None or -1 asks for all of them."""
    if k is None or (isinstance(k, int) and not isinstance(k, bool) and k == -1):
        k = remaining
    return check_batch_size(k, remaining, name)


def kmeanspp(embeddings, k, *, generator=None, first="random", labeled=None, candidates=None, progress=None,
             backend=None):
    """k-means++ (D²) seeding: ``k`` centers (``None`` or -1: order the whole pool).

    Each pick is drawn with probability d/Σd (d: squared distance to the nearest
    center so far), exactly, by Gumbel-max keyed by (seed, step, index). Points at
    distance 0 (chosen ones, exact duplicates) are never drawn while any d > 0;
    after that the draw is uniform among the unselected. Returns ``Selection`` with
    the pick's d at the time of the pick as score (+inf for a first pick with no centers).
    ``candidates``: pool indices or a boolean mask of the points that may be picked
    (``k=None`` then orders the candidates); their embeddings alone are read.
    ``torch.ops.kbald_kernels.kmeanspp`` (with ``k=None`` its size is data-dependent).
    """
    return _ordered(_kmeanspp_op, embeddings, k, generator, first, labeled, candidates, progress, backend)


def select_badge(embeddings, batch_size, *, generator=None, first="max_norm", labeled=None, candidates=None,
                 backend=None):
    """BADGE (Ash et al. 2020): k-means++ over gradient embeddings, dense or as
    :func:`badge_factors`. Starts from the largest-norm point as BADGE does.
    ``candidates`` (a random subset or a proxy's prefilter, :func:`candidate_subset`):
    as in :func:`kmeanspp`. ``torch.ops.kbald_kernels.select_badge``."""
    return _ordered(_select_badge_op, embeddings, batch_size, generator, first, labeled, candidates, None, backend)


def select_coreset(embeddings, batch_size, *, labeled=None, generator=None, first="random", candidates=None,
                   backend=None):
    """CORESET k-center greedy: repeatedly take the point farthest from every center
    (``labeled`` points and earlier picks; ties to the smaller index). ``candidates``:
    as in :func:`kmeanspp`. ``torch.ops.kbald_kernels.select_coreset``."""
    return _ordered(_select_coreset_op, embeddings, batch_size, generator, first, labeled, candidates, None, backend)


def _ordered(op, embeddings, k, generator, first, labeled, candidates, progress, backend):
    """Run a k-means++ selection op on the public arguments, turned into tensors."""
    parts, np_in = embedding_parts(embeddings)
    labeled_indices, labeled_embeddings = None, []
    if labeled is not None:
        if labeled_as_indices(labeled):
            labeled_indices = index_argument(labeled, "labeled")
        else:
            labeled_embeddings = embedding_parts(labeled, "labeled")[0]
    if k is not None:
        k = integer_argument(k, "k" if op is _kmeanspp_op else "batch_size")
    out = op(parts, k, seed_argument(generator), choice_argument(first, "first", FIRST_CHOICES), labeled_indices,
             labeled_embeddings, candidates_argument(candidates), None if progress is None else bool(progress), backend)
    return as_selection(out, np_in)


def labeled_as_indices(labeled):
    """``labeled`` names pool points (integers) rather than giving outside embeddings."""
    if isinstance(labeled, (list, tuple, range)):
        return all(isinstance(v, int) for v in labeled)
    return not as_tensor(labeled, "labeled")[0].dtype.is_floating_point


def _embeddings(parts):
    return parts[0] if len(parts) == 1 else tuple(parts)


def _fake_ordering(embeddings, k, *args, **kwargs):
    if len(embeddings) == 2:  # on meta tensors the fake runs in place of the op: it must refuse as the op does
        check_same_device(**{"embeddings features": embeddings[0], "embeddings residuals": embeddings[1]})
    first = embeddings[0]
    if k is None or k == -1:  # the whole ordering: as many picks as points remain selectable
        size = torch.library.get_ctx().new_dynamic_size()
        return first.new_empty(size, dtype=torch.int64), first.new_empty(size, dtype=result_dtype(first.dtype))
    return fake_selection(k, result_dtype(first.dtype), first.device)


def _selection_op(name, mode, k_name):
    """The op ``torch.ops.kbald_kernels.<name>``: a k-means++ (``mode="sample"``) or
    k-center (``"argmax"``) ordering's first ``k`` picks."""
    def impl(embeddings: list[torch.Tensor], k: Optional[int], seed: Optional[int], first: str,
             labeled: Optional[torch.Tensor], labeled_embeddings: list[torch.Tensor],
             candidates: Optional[torch.Tensor], progress: Optional[bool],
             backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
        if labeled_embeddings:  # outside embeddings, else pool indices (or none)
            labeled = _embeddings(labeled_embeddings)
        ordering = KMeansPPOrdering(_embeddings(embeddings), generator=seed_value(seed), first=first, labeled=labeled,
                                    mode=mode, candidates=candidates, backend=backend)
        picks = ordering.take(picks_wanted(k, ordering.remaining, k_name), progress=progress)
        return fresh(picks, (*embeddings, labeled, candidates))

    impl.__name__ = name
    return custom_op(name, _fake_ordering)(impl)


_kmeanspp_op = _selection_op("kmeanspp", "sample", "k")
_select_badge_op = _selection_op("select_badge", "sample", "batch_size")
_select_coreset_op = _selection_op("select_coreset", "argmax", "batch_size")
