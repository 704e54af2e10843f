"""The report's presentation: colour scale, heatmap size on large tables, the weighted all-cohorts row."""

import datetime as dt
import struct

import numpy as np
import pandas as pd
import pytest

from retention import all_cohorts_row
from retention_report import MIN_COLOUR_COHORT, colour_scale_max, write_retention_heatmap


def _png_size(path):
    """(width, height) from the PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def _table(sizes, shares):
    shares = np.asarray(shares, dtype=float)
    frame = pd.DataFrame(shares, columns=[f"period_{k}" for k in range(shares.shape[1])])
    frame.insert(0, "cohort_size", sizes)
    frame.index = pd.Index([dt.date(2017, 4, 1) + dt.timedelta(days=i) for i in range(len(sizes))], name="cohort_start")
    return frame


def test_colour_scale_is_set_by_periods_after_the_first():
    table = _table([100, 200], [[1.0, 0.35, 0.1], [1.0, 0.4, np.nan]])
    assert colour_scale_max(table) == pytest.approx(40.0)  # period 0's 100% does not set the top of the scale
    assert colour_scale_max(table[["cohort_size", "period_0"]]) == 100.0  # nothing after period 0: full range
    assert colour_scale_max(table.assign(period_1=np.nan, period_2=np.nan)) == 100.0
    assert colour_scale_max(table.assign(period_1=0.0, period_2=0.0)) == 100.0


def test_colour_scale_is_not_set_by_a_tiny_cohort():
    table = _table([5_000, 2, 4_000], [[1.0, 0.3], [1.0, 1.0], [1.0, 0.25]])  # 1 of 2 users back: 100%
    assert colour_scale_max(table) == pytest.approx(30.0)
    tiny_only = _table([2, 3], [[1.0, 0.5], [1.0, 1 / 3]])  # no cohort is large: every cohort counts
    assert max(tiny_only["cohort_size"]) < MIN_COLOUR_COHORT and colour_scale_max(tiny_only) == pytest.approx(50.0)


def test_heatmap_of_a_small_table(tmp_path):
    png = write_retention_heatmap(_table([10, 20], [[1.0, 0.35], [1.0, np.nan]]), tmp_path / "h.png", "t")
    width, height = _png_size(png)
    assert 100 < width < 1_000 and 100 < height < 1_000


@pytest.mark.parametrize("n_cohorts, n_periods", [(365, 8), (30, 3001), (400, 400)])
def test_heatmap_stays_a_few_thousand_pixels(tmp_path, n_cohorts, n_periods):
    rng = np.random.default_rng(0)
    table = _table(rng.integers(1, 500, n_cohorts), rng.random((n_cohorts, n_periods)))
    width, height = _png_size(write_retention_heatmap(table, tmp_path / "big.png", "a year of daily cohorts"))
    assert width <= 2_400 and height <= 3_000


def test_all_cohorts_row_is_weighted_by_cohort_size_over_known_cells():
    table = _table([100, 300, 50], [[1.0, 0.5, 0.2], [1.0, 0.1, np.nan], [1.0, np.nan, np.nan]])
    row = all_cohorts_row(table)
    assert row["cohort_size"] == 450
    assert row["period_0"] == pytest.approx(1.0)
    assert row["period_1"] == pytest.approx((100 * 0.5 + 300 * 0.1) / 400)  # the 50-user cohort has no period 1
    assert row["period_2"] == pytest.approx(0.2)
    assert np.isnan(all_cohorts_row(table.assign(period_2=np.nan))["period_2"])
