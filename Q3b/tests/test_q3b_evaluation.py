"""Holdout splits, ranking metrics on hand-checked cases, tuning on a validation split, and the evaluation table."""

import math

import numpy as np
import pandas as pd
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


def test_metrics_hand_checked():
    # user 0: held out {1, 2}; list [1, 5, 2] -> hits at ranks 1 and 3
    # user 1: held out {7};    list [8, 9, -1] -> no hit
    held_out = sp.csr_matrix(([1, 1, 1], ([0, 0, 1], [1, 2, 7])), shape=(2, 10))
    ids = np.array([[1, 5, 2], [8, 9, -1]])
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert ev.precision_at_k(ids, held_out, 3) == pytest.approx((2 / 3 + 0) / 2)
    assert ev.recall_at_k(ids, held_out, 3) == pytest.approx((1 + 0) / 2)
    assert ev.ndcg_at_k(ids, held_out, 3) == pytest.approx((dcg / idcg + 0) / 2)
    assert ev.map_at_k(ids, held_out, 3) == pytest.approx(((1 + 2 / 3) / 2 + 0) / 2)
    # a single user's list (1-D, as recommend returns for one user) is one row
    assert ev.ndcg_at_k(ids[0], held_out[0], 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))


@pytest.mark.parametrize(
    "ids, held_out, k, message",
    [
        (np.zeros((2, 3)), sp.csr_matrix(np.ones((2, 5))), 4, "k must be between 1 and the list length 3"),
        (np.zeros((2, 3)), sp.csr_matrix(np.ones((3, 5))), 2, "held_out has 3 rows for 2 lists"),
        (np.zeros((2, 3)), sp.csr_matrix(np.eye(2, 5)[[0, 0]] * [[1], [0]]), 2, "at least one held-out item"),
    ],
)
def test_metric_arguments_are_checked(ids, held_out, k, message):
    with pytest.raises(ValueError, match=message):
        ev.ndcg_at_k(ids, held_out, k)


def test_paired_standard_error_is_the_standard_error_of_the_differences():
    a, b = np.array([0.5, 0.2, 0.9, 0.4]), np.array([0.4, 0.3, 0.6, 0.4])
    d = a - b
    expected = math.sqrt(sum((x - d.mean()) ** 2 for x in d) / 3) / 2
    assert ev.paired_standard_error(a, b) == pytest.approx(expected)


def test_evaluation_table_tunes_on_validation_and_scores_every_model_on_test(small_data, tmp_path, monkeypatch):
    seen = []  # (train entries, evaluated held-out entries) of every user-user fit
    real_ids = ev._user_knn_ids
    monkeypatch.setattr(ev, "K_GRID", (5, 20))
    monkeypatch.setattr(ev, "PROFILE_WEIGHT_GRID", (0.0, 0.3))
    monkeypatch.setattr(ev, "BM25_K_GRID", (50,))
    monkeypatch.setattr(ev, "ALS_FACTORS_GRID", (16,))

    def spy(train, profiles, users, k, params, method):
        seen.append(train)
        return real_ids(train, profiles, users, k, params, method)

    monkeypatch.setattr(ev, "_user_knn_ids", spy)
    table = ev.evaluate(small_data, max_users=300, extra_models={"prototype": {"k": 50, "profile_weight": 1.0}})
    assert table["model"].tolist() == [
        "user-user (tuned)",
        "prototype",
        "global popularity",
        "country popularity",
        "implicit ALS",
        "implicit item-item BM25",
    ]
    _, test = ev.holdout_split(small_data.plays, random_state=0)
    assert all(train.multiply(test).nnz == 0 for train in seen)  # no fit ever saw a test entry
    tuning = pd.DataFrame(table.attrs["tuning"])
    assert len(tuning) == 2 * 2 * 2 + 2
    user_user = tuning[tuning["model"] == "user-user"]
    assert table.loc[0, "params"] == user_user.loc[user_user["ndcg@10"].idxmax(), "params"]
    metric_columns = ["precision@10", "recall@10", "ndcg@10", "map@10", "coverage"]
    assert ((table[metric_columns] >= 0) & (table[metric_columns] <= 1)).all().all()
    assert table.loc[0, "ndcg_diff"] == 0
    np.testing.assert_allclose(table["ndcg_diff"], table.loc[0, "ndcg@10"] - table["ndcg@10"], atol=1e-12)
    assert (table["ndcg_diff_se"].iloc[1:] > 0).all()
    assert table.loc[table["model"] == "global popularity", "coverage"].item() < table["coverage"].max()
    ev.plot_evaluation(table, tmp_path / "chart.png", source="generated look-alike Last.fm data")
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_chart_legend_is_outside_the_bars_and_title_names_the_data(tmp_path, monkeypatch):
    import matplotlib.figure

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


@pytest.mark.slow
def test_on_real_hetrec_plays_user_user_beats_the_implicit_baselines(hetrec_plays):
    import lastfm_data
    import q3b_features

    plays, _ = lastfm_data.load_hetrec(hetrec_plays)
    data = q3b_features.build_user_artist_data(plays, lastfm_data.empty_profiles())
    table = ev.evaluate(data, max_users=None).set_index("model")
    assert table.attrs["users_evaluated"] > 1800
    best_baseline = table.loc[["implicit ALS", "implicit item-item BM25"], "ndcg@10"].idxmax()
    # the target: at least the best implicit baseline, by more than two paired standard errors
    assert table.loc[best_baseline, "ndcg_diff"] > 2 * table.loc[best_baseline, "ndcg_diff_se"]
