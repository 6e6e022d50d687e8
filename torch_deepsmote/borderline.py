"""Borderline-SMOTE's choice of base codes, in latent space: the rows "in danger".

Han, Wang and Mao ("Borderline-SMOTE: A New Over-Sampling Method in Imbalanced Data Sets
Learning", ICIC 2005, LNCS 3644) observe that a classifier errs near the class boundary,
and over-sample a class from its borderline samples only. A row is *in danger* when, of its
``m`` nearest rows of all classes (itself excluded), ``m'`` belong to other classes with
``m / 2 <= m' < m``: at least half of its neighbourhood is another class, but not all of it
(``m' = m`` is noise, left out; ``m' < m / 2`` is safe). This is the rule of
imbalanced-learn's ``BorderlineSMOTE(kind='borderline-1', m_neighbors=10)``; here it runs
on the autoencoder's codes, with the estimator's ``knn`` backend. The random draws stay in
the planner (``plan_synthetic``, ``bases=``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ._labels import as_labels
from ._validation import check_positive_int
from .knn import check_neighbor_table, get_knn

__all__ = ["in_danger"]


@torch.no_grad()
def in_danger(
    latents: torch.Tensor, labels: torch.Tensor, m_neighbors: int = 10, knn: str | Any = "auto"
) -> torch.Tensor:
    """Which codes are in danger: ``m / 2 <= m' < m`` of their ``m`` nearest codes (of all
    classes, itself excluded) belong to other classes.

    With fewer than ``m_neighbors + 1`` codes, ``m`` is the number of other codes (with a
    warning).

    Args:
        latents: Codes, shape (N, d).
        labels: Integer class labels, shape (N,).
        m_neighbors: ``m``, the neighbourhood that decides (imbalanced-learn's default 10).
        knn: Backend or backend name, see ``get_knn``; searched
            once over all N codes.

    Returns:
        BoolTensor (N,) on the CPU, ``True`` for the rows in danger.

    Raises:
        ValueError: Shapes disagree, or the backend returns a bad table.
        TypeError: ``m_neighbors`` is not an integer.

    Examples:
        >>> latents = torch.tensor([0.0, 1.0, 2.0, 3.0, 3.5, 4.2, 5.0, 6.0, 7.0])[:, None]
        >>> labels = torch.tensor([0, 0, 0, 0, 1, 0, 1, 1, 1])
        >>> in_danger(latents, labels, m_neighbors=2, knn="torch").tolist()  # 3.5, 4.2: noise
        [False, False, False, True, False, False, True, False, False]
    """
    m_neighbors = check_positive_int("m_neighbors", m_neighbors)
    labels = as_labels(labels, "labels")
    if not isinstance(latents, torch.Tensor):
        latents = torch.as_tensor(np.asarray(latents))
    if latents.ndim != 2 or labels.shape != (latents.shape[0],):
        raise ValueError(
            "`latents` and `labels` should have shapes (N, d) and (N,), but got latents with "
            f"shape {tuple(latents.shape)} and labels with shape {tuple(labels.shape)}."
        )
    n = labels.shape[0]
    m = min(m_neighbors, n - 1)
    if m < m_neighbors:
        warnings.warn(
            f"There are {n} codes, not more than m_neighbors={m_neighbors}: the danger rule "
            f"uses their {max(m, 0)} nearest neighbours instead.",
            UserWarning,
            stacklevel=2,
        )
    if m < 1:
        return torch.zeros(n, dtype=torch.bool)
    backend = get_knn(knn)
    found = check_neighbor_table(backend.kneighbors(latents, m), n, m, backend)
    n_other = (labels[found] != labels[:, None]).sum(dim=1)
    # imbalanced-learn: n_maj >= m / 2 and n_maj < m (in integers: 2 m' >= m).
    return (2 * n_other >= m) & (n_other < m)
