"""Verification figures of fsbench.separation on hand-computable score sets."""
from __future__ import annotations

import numpy as np
import pytest

from fsbench.separation import verification


def test_verification_figures():
    same = np.array([0.9, 0.8, 0.3])
    different = np.array([0.1, 0.2, 0.5, 0.4])
    r = verification(same, different, far=0.25)
    assert r["auc"] == pytest.approx(10 / 12)  # 0.3 beats two of the four different-person scores
    assert r["tar_at_far"] == pytest.approx(2 / 3)  # threshold 0.5 accepts one impostor of four: 0.9, 0.8 pass
    d = (same.mean() - different.mean()) / np.sqrt((same.var() + different.var()) / 2)
    assert r["d_prime"] == pytest.approx(d)
    assert 0 < r["eer"] < 0.5


def test_perfect_separation():
    r = verification(np.array([0.7, 0.9]), np.array([0.1, 0.2, 0.3]))
    assert (r["auc"], r["tar_at_far"], r["eer"]) == (1.0, 1.0, 0.0)
