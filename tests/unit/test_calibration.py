"""Calibration arithmetic (rescue.matching.calibration) on known distributions."""

from __future__ import annotations

import numpy as np
import pytest

from rescue.matching.calibration import BANDS, Calibration, calibrate, default_calibration


def _normal_calibration(seed: int = 0) -> Calibration:
    rng = np.random.default_rng(seed)
    impostor = rng.normal(0.8, 0.1, 400_000)
    genuine = rng.normal(0.45, 0.07, 5_000)
    return calibrate(genuine=genuine, impostor=impostor, model="m", source="normal")


def test_pair_rate_follows_the_distribution_also_in_the_fitted_tail():
    from statistics import NormalDist

    calibration = _normal_calibration()
    truth = NormalDist(0.8, 0.1)
    for d in (0.7, 0.6, 0.5):  # empirical part
        assert calibration.pair_rate(d) == pytest.approx(truth.cdf(d), rel=0.15)
    for d in (0.4, 0.35):  # beyond the measured pairs: the fitted tail
        assert d < calibration.tail_from
        assert calibration.pair_rate(d) == pytest.approx(truth.cdf(d), rel=1.0)
        assert calibration.pair_rate(d) > truth.cdf(d) / 2


def test_gallery_rate_and_bands_tighten_with_gallery_size():
    calibration = _normal_calibration()
    p = calibration.pair_rate(0.55)
    assert calibration.gallery_rate(0.55, 1) == pytest.approx(p)
    assert calibration.gallery_rate(0.55, 1000) == pytest.approx(1 - (1 - p) ** 1000)
    for limit in (0.01, 0.1):
        small, large = calibration.cutoff(limit, 100), calibration.cutoff(limit, 100_000)
        assert large < small
        assert calibration.gallery_rate(small, 100) == pytest.approx(limit, rel=1e-3)
    strong_cut = calibration.cutoff(BANDS[0][1], 1000)
    assert calibration.band(strong_cut - 0.001, 1000)[0] == "strong"
    assert calibration.band(strong_cut + 0.01, 1000)[0] in {"possible", "weak"}
    assert calibration.band(0.9, 1000)[0] == "weak"


def test_loose_bound_keeps_99_percent_of_true_pairs():
    calibration = _normal_calibration()
    assert calibration.genuine_share(calibration.loose_bound) >= 0.99
    assert calibration.loose_bound == pytest.approx(0.45 + 2.33 * 0.07, abs=0.02)


def test_too_few_pairs_are_refused():
    with pytest.raises(ValueError, match="at least"):
        calibrate(genuine=np.ones(5), impostor=np.ones(500), model="m", source="x")


def test_round_trip_and_shipped_default_carries_its_warning():
    calibration = _normal_calibration()
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    default = default_calibration()
    assert "East Asian" in default.warning
    assert "LFW" in default.source
    assert 0.55 <= default.loose_bound <= 0.7
