"""Holdout split, ranking metrics on hand-checked cases, and the evaluation table."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

import rec_evaluation as ev


def test_holdout_split_partitions_each_users_artists():
    counts = [3, 5, 10, 12]
    rows = np.repeat(np.arange(4), counts)
    cols = np.concatenate([np.arange(c) for c in counts])
    plays = sp.csr_matrix((np.arange(1, len(rows) + 1, dtype=np.float32), (rows, cols)), shape=(4, 20))
    train, test = ev.holdout_split(plays, random_state=5)
    assert (train + test != plays).nnz == 0
    assert train.multiply(test).nnz == 0
    assert np.diff(test.indptr).tolist() == [0, 1, 2, 2]  # round(0.2 * n) for n >= 5, at least 1
    again, _ = ev.holdout_split(plays, random_state=5)
    assert (again != train).nnz == 0


def test_ranking_metrics_hand_checked():
    # user 0: hidden {1, 2}; list [1, 5, 2] -> hits at ranks 1 and 3
    # user 1: hidden {7};    list [8, 9, -1] -> no hit
    test = sp.csr_matrix(([1, 1, 1], ([0, 0, 1], [1, 2, 7])), shape=(2, 10))
    recommended = np.array([[1, 5, 2], [8, 9, -1]])
    m = ev.ranking_metrics(recommended, test, np.array([0, 1]), k=3)
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert m["precision"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["recall"] == pytest.approx((1 + 0) / 2)
    assert m["ndcg"] == pytest.approx((dcg / idcg + 0) / 2)
    assert m["map"] == pytest.approx(((1 + 2 / 3) / 2 + 0) / 2)


def test_evaluation_table_has_every_model_and_sane_values(small_data, tmp_path):
    table = ev.evaluate(small_data, max_users=300, profile_weights=(0.0, 1.0))
    assert table["model"].tolist() == [
        "user-user (profile weight 0)",
        "user-user (profile weight 1)",
        "global popularity",
        "country popularity",
        "implicit ALS",
        "implicit item-item BM25",
    ]
    metric_columns = ["precision@10", "recall@10", "ndcg@10", "map@10", "coverage"]
    assert ((table[metric_columns] >= 0) & (table[metric_columns] <= 1)).all().all()
    # the global chart recommends (nearly) the same 10 artists to everyone
    assert table.loc[table["model"] == "global popularity", "coverage"].item() < table["coverage"].max()
    ev.plot_evaluation(table, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_chart_legend_is_outside_the_bars_and_title_names_the_data(tmp_path, monkeypatch):
    import matplotlib.figure
    import pandas as pd

    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: figures.append(fig))
    table = pd.DataFrame(
        {"model": ["a", "implicit item-item BM25"], "ndcg@10": [0.2, 0.9], "precision@10": [0.1, 0.95]}
    )
    ev.plot_evaluation(table, tmp_path / "chart.png", source="generated look-alike Last.fm data")
    (fig,) = figures
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    assert "generated look-alike Last.fm data" in ax.get_title()


def test_evaluate_passes_the_neighbour_method_through(small_data):
    # 600 users: 'auto' is exact, so both tables must agree; an unknown method is the recommender's ValueError
    exact = ev.evaluate(small_data, max_users=200, profile_weights=(0.03,), baselines=False, method="exact")
    auto = ev.evaluate(small_data, max_users=200, profile_weights=(0.03,), baselines=False)
    assert exact["ndcg@10"].item() == auto["ndcg@10"].item()
    with pytest.raises(ValueError, match="method"):
        ev.evaluate(small_data, max_users=200, profile_weights=(0.03,), baselines=False, method="nope")
