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
