"""The Spark neighbour search gives the local model's recommendations: exactly on the exact route, and the local
production route's lists (capped posting lists, exact re-rank) on a larger set.

Spark runs in local mode (local[2]) in one session for the whole test run; the tests are marked slow and skip, saying
what to install, when pyspark or Java is missing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lastfm_data
import lastfm_generator
import neighbours
import user_knn

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
CLI = HERE.parent / "recommender.py"
#: JVM flags and settings that make a test session start and run faster; the session is shared with any other
#: part's Spark tests (getOrCreate).
TEST_CONF = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
}


@pytest.fixture(scope="session")
def spark():
    q3b_spark = pytest.importorskip("q3b_spark", reason="pyspark not installed: pip install -r requirements-spark.txt")
    try:
        q3b_spark.check_spark_available()
    except q3b_spark.SparkUnavailableError as error:
        pytest.skip(str(error))
    return q3b_spark.spark_session("local[2]", conf=TEST_CONF)


def generated(tmp_path_factory, n_users: int, seed: int):
    folder = tmp_path_factory.mktemp(f"lastfm_{n_users}")
    lastfm_generator.generate_lastfm(folder, n_users, random_state=seed)
    plays, _ = lastfm_data.load_plays(folder / lastfm_data.PLAYS_FILE)
    profiles, _ = lastfm_data.load_profiles(folder / lastfm_data.PROFILES_FILE)
    return folder, plays, profiles


def list_overlap(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """Mean over users of |a's artists & b's artists| / |a's artists| (users of a)."""
    ours = a.groupby("user")["artist_name"].apply(set)
    theirs = b.groupby("user")["artist_name"].apply(set).reindex(ours.index)
    return float(np.mean([len(x & y) / len(x) if isinstance(y, set) else 0.0 for x, y in zip(ours, theirs)]))


def test_exact_route_gives_the_local_exact_lists(spark, tmp_path_factory):
    import q3b_spark

    _, plays, profiles = generated(tmp_path_factory, 200, seed=3)

    def local_exact(unit, n_profile, k, query):
        return neighbours.exact_neighbours(unit, query, k)

    expected, expected_fallbacks = user_knn.build_batch(plays, profiles, 10, k=20, neighbour_search=local_exact)
    search = q3b_spark.SparkNeighbourSearch(spark, posting_cap=None)  # all pairs: the exact route
    got, fallbacks = user_knn.build_batch(plays, profiles, 10, k=20, neighbour_search=search)
    columns = ["user", "rank", "artist_mbid", "artist_name", "source"]
    pd.testing.assert_frame_equal(got[columns], expected[columns])
    np.testing.assert_allclose(got["score"], expected["score"], rtol=1e-5, atol=1e-7)
    pd.testing.assert_frame_equal(fallbacks, expected_fallbacks)
    assert set(got["source"]) >= {"neighbours"}


def test_capped_rule_matches_the_local_production_route(spark, tmp_path_factory):
    import q3b_spark

    _, plays, profiles = generated(tmp_path_factory, 1500, seed=5)
    # the local production route: capped posting lists and the exact re-rank (inverted index), small caps so that
    # they bite on this set as the defaults do on the full data
    cap, candidates = 20, 30

    def local_inverted(unit, n_profile, k, query):
        index = neighbours.build_index(unit, n_profile, cap)
        return neighbours.inverted_neighbours(unit, n_profile, index, query, k, candidates)

    expected, _ = user_knn.build_batch(plays, profiles, 10, k=20, neighbour_search=local_inverted)
    search = q3b_spark.SparkNeighbourSearch(spark, posting_cap=cap, n_candidates=candidates)
    got, _ = user_knn.build_batch(plays, profiles, 10, k=20, neighbour_search=search)
    assert list_overlap(got, expected) >= 0.95
    listeners = plays.groupby("artist", observed=True)["user"].nunique()
    assert (listeners > cap).sum() >= 20  # the caps do bite: the comparison is with the capped route, not all pairs


def test_cli_batch_on_spark_writes_partitioned_parquet(spark, tmp_path_factory, tmp_path):
    folder, _, _ = generated(tmp_path_factory, 300, seed=11)
    local_out, spark_out = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    base = [sys.executable, str(CLI), "batch", "--data-dir", str(folder), "-n", "10"]
    for command in (
        [*base, "--out", str(local_out)],
        [*base, "--out", str(spark_out), "--engine", "spark", "--master", "local[2]", "--partitions", "3"],
    ):
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert len(list(spark_out.glob("part-*.parquet"))) == 3
    local, on_spark = pd.read_parquet(local_out), pd.read_parquet(spark_out)
    assert len(on_spark) == len(local) and set(on_spark["user"]) == set(local["user"])
    assert list_overlap(on_spark, local) >= 0.95
    cold = local[local["source"] != "neighbours"]["user"].unique()  # cold start: the same popularity lists
    key = ["user", "rank"]
    pd.testing.assert_frame_equal(
        on_spark[on_spark["user"].isin(cold)].sort_values(key).reset_index(drop=True)[["user", "rank", "artist_name"]],
        local[local["user"].isin(cold)].sort_values(key).reset_index(drop=True)[["user", "rank", "artist_name"]],
    )
    fallbacks = pd.read_parquet(tmp_path / "spark_fallbacks.parquet").sort_values(["country", "rank"])
    pd.testing.assert_frame_equal(
        fallbacks.reset_index(drop=True),
        pd.read_parquet(tmp_path / "local_fallbacks.parquet").sort_values(["country", "rank"]).reset_index(drop=True),
    )


def test_cli_without_java_says_what_to_install(tmp_path_factory, tmp_path):
    pytest.importorskip("pyspark", reason="pyspark not installed: pip install -r requirements-spark.txt")
    folder, _, _ = generated(tmp_path_factory, 50, seed=1)
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no java on PATH, no JAVA_HOME
    done = subprocess.run(
        [
            sys.executable,
            str(CLI),
            "batch",
            "--data-dir",
            str(folder),
            "--out",
            str(tmp_path / "r.parquet"),
            "--engine",
            "spark",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Java" in done.stderr and "apt-get install" in done.stderr


def test_cli_bad_master_is_one_line(tmp_path_factory, tmp_path):
    pytest.importorskip("pyspark", reason="pyspark not installed: pip install -r requirements-spark.txt")
    folder, _, _ = generated(tmp_path_factory, 50, seed=2)
    out = str(tmp_path / "r.parquet")
    command = [sys.executable, str(CLI), "batch", "--data-dir", str(folder), "--out", out, "--engine", "spark"]
    done = subprocess.run([*command, "--master", "foo"], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("recommender.py batch:")]
    assert len(errors) == 1 and "--master foo" in errors[0]
