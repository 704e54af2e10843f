"""Shared fixtures for Q3b tests: the real Last.fm samples and a small generated data set."""

from pathlib import Path

import pytest

Q3B = Path(__file__).resolve().parents[1]

REAL_LASTFM = Q3B.parent.parent / "shared" / "data" / "lastfm"


@pytest.fixture(scope="session")
def real_lastfm():
    """Folder with the real Last.fm sample lines (read-only; never copied)."""
    if not REAL_LASTFM.is_dir():
        pytest.skip(f"real Last.fm samples not found at {REAL_LASTFM}")
    return REAL_LASTFM


@pytest.fixture(scope="session")
def small_lastfm(tmp_path_factory):
    """Generated look-alike files for 600 users (fixed seed), loaded once per session."""
    import lastfm_data
    import lastfm_generator

    folder = tmp_path_factory.mktemp("lastfm_small")
    lastfm_generator.generate_lastfm(folder, 600, random_state=7)
    plays, _ = lastfm_data.load_plays(folder / lastfm_data.PLAYS_FILE)
    profiles, _ = lastfm_data.load_profiles(folder / lastfm_data.PROFILES_FILE)
    return folder, plays, profiles


@pytest.fixture(scope="session")
def small_data(small_lastfm):
    import q3b_features

    _, plays, profiles = small_lastfm
    return q3b_features.build_user_artist_data(plays, profiles)


@pytest.fixture(scope="session")
def hetrec_plays():
    """The real HetRec 2011 Last.fm 2K ``user_artists.dat`` (read-only; never copied)."""
    path = REAL_LASTFM / "hetrec2011-2k" / "user_artists.dat"
    if not path.is_file():
        pytest.skip(f"HetRec Last.fm data not found at {path}")
    return path
