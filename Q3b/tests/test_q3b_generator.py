"""The generator of look-alike Last.fm files: the real format, the real quirks, determinism, heavy tails."""

import re

import numpy as np
import pandas as pd

import lastfm_data as ld
import lastfm_generator as gen


def test_generator_writes_the_real_format_with_quirks(tmp_path, real_lastfm):
    reference = gen.profile_reference(real_lastfm / "profile_sample.tsv")
    counts = gen.generate_lastfm(tmp_path, 400, random_state=3, reference=reference)
    plays_lines = (tmp_path / ld.PLAYS_FILE).read_text(encoding="utf-8").splitlines()
    profile_lines = (tmp_path / ld.PROFILES_FILE).read_text(encoding="utf-8").splitlines()
    assert len(plays_lines) == counts["plays_rows"]
    plays_fields = [line.split("\t") for line in plays_lines]
    profile_fields = [line.split("\t") for line in profile_lines]
    assert {len(f) for f in plays_fields} == {4} and {len(f) for f in profile_fields} == {5}
    assert all(re.fullmatch(r"[0-9a-f]{40}", f[0]) for f in plays_fields + profile_fields)
    assert all(f[3].isdigit() for f in plays_fields)
    assert any(f[1] == "" for f in plays_fields) and any('"' in f[2] for f in plays_fields)
    assert all(f[4] == "" or re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, 20\d\d", f[4]) for f in profile_fields)
    assert set(f[3] for f in profile_fields) <= set(reference.country.index)
    per_user = pd.Series([f[0] for f in plays_fields]).value_counts()
    assert 40 <= per_user.mean() <= 52
    _, report = ld.load_plays(tmp_path / ld.PLAYS_FILE)
    assert report.n_malformed == 0


def test_generator_is_deterministic_and_heavy_tailed(tmp_path):
    gen.generate_lastfm(tmp_path / "a", 300, random_state=11)
    gen.generate_lastfm(tmp_path / "b", 300, random_state=11)
    for name in (ld.PLAYS_FILE, ld.PROFILES_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    plays, _ = ld.load_plays(tmp_path / "a" / ld.PLAYS_FILE)
    listeners = plays.groupby("artist", observed=True).size().sort_values(ascending=False).to_numpy()
    assert listeners[0] > 10 * np.median(listeners)  # a popularity head over a long tail
    assert plays["plays"].max() > 20 * plays["plays"].median()  # heavy-tailed play counts


def test_users_mix_several_niches_that_own_disjoint_artists():
    tables = gen.generate_tables(3000, random_state=5)
    taste = tables.taste
    followed = (taste.user_niches >= 0).sum(1)
    assert 1.8 <= followed.mean() <= 2.6 and (followed > 1).mean() > 0.5 and followed.max() <= gen.MAX_NICHES_PER_USER
    assert np.allclose(taste.user_weights.sum(1), 1, atol=1e-5)
    # a niche owns artists of its own genre only, and every artist belongs to exactly one niche
    assert (taste.niche_genre[taste.artist_niche] == taste.artist_genre).all()
    # the plays show the mix: most users who follow several niches list artists owned by at least two of them
    owner = taste.artist_niche[tables.artist]
    own = (taste.user_niches[tables.user] == owner[:, None]).any(1)
    niches_seen = pd.DataFrame({"user": tables.user[own], "niche": owner[own]}).groupby("user")["niche"].nunique()
    several = np.flatnonzero(followed > 1)
    assert (niches_seen.reindex(several, fill_value=0) >= 2).mean() > 0.7


def test_niche_count_grows_with_the_catalogue_and_the_catalogue_with_users():
    assert gen.default_artists(20_000) < gen.default_artists(100_000) < gen.default_artists(359_347) == 160_000
    small = gen.generate_tables(300, random_state=1, n_artists=2000).taste
    large = gen.generate_tables(300, random_state=1, n_artists=20_000).taste
    assert len(large.niche_genre) == 20_000 // gen.NICHE_ARTISTS > 4 * len(small.niche_genre)


def test_neighbours_carry_signal_and_the_head_matches_the_real_file():
    tables = gen.generate_tables(3000, random_state=2)
    n_artists = len(tables.catalogue)
    listed = _binary_matrix(tables.user, tables.artist, 3000, n_artists)
    # users of the same primary niche share far more artists than users of different primary genres
    niche, genre = tables.taste.primary_niche, tables.taste.primary_genre
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3000, (2, 20_000))
    shared = np.asarray(listed[a].multiply(listed[b]).sum(1)).ravel()
    same_niche, other_genre = (niche[a] == niche[b]) & (a != b), genre[a] != genre[b]
    assert same_niche.sum() > 20
    assert shared[same_niche].mean() > 3 * shared[other_genre].mean()
    # the most popular artist reaches about a fifth of the users, as Radiohead does in the real file
    listeners = np.bincount(tables.artist, minlength=n_artists)
    assert 0.12 < listeners.max() / 3000 < 0.4  # 0.30 here, 0.21 at full size (smaller catalogue here)


def _binary_matrix(rows, cols, n_rows, n_cols):
    import scipy.sparse as sp

    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_rows, n_cols))
