"""Loaders: row accounting and the real files' quirks."""
import csv

import pandas as pd

import lastfm_data as ld

SHA = "0" * 39


def _user(i):
    return f"{i:040x}"


def test_real_plays_sample_loads_every_row(real_lastfm):
    path = real_lastfm / "plays_sample.tsv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    plays, report = ld.load_plays(path)
    assert report.rows_read == len(rows) == 295
    assert report.n_malformed == 0
    assert report.notes["rows without artist mbid keyed by normalised artist name"] == sum(r[1] == "" for r in rows) == 2
    assert plays["user"].nunique() == len({r[0] for r in rows}) == 6
    assert plays["plays"].sum() == sum(int(r[3]) for r in rows)


def test_real_profile_sample_matches_independent_parse(real_lastfm):
    path = real_lastfm / "profile_sample.tsv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    profiles, report = ld.load_profiles(path)
    assert len(profiles) == len(rows) == 300 and report.n_malformed == 0
    assert (profiles["gender"] == "f").sum() == sum(r[1] == "f" for r in rows)
    valid_ages = [int(r[2]) for r in rows if r[2] and 1 <= int(r[2]) <= 100]
    assert profiles["age"].notna().sum() == len(valid_ages)
    assert profiles.loc[0, "signup"] == pd.Timestamp("2007-02-01")  # 'Feb 1, 2007' in the first line


def test_plays_quirks_are_counted_not_dropped_silently(tmp_path):
    lines = [
        f"{_user(1)}\tmbid-a\tBand A\t10",
        f"{_user(1)}\tmbid-a\tBand A\t5",            # duplicate (user, artist): summed
        f"{_user(1)}\t\tThe  Beatles \t3",           # no mbid: keyed by normalised name
        f"{_user(2)}\t\tthe beatles\t4",             # same normalised name
        f'{_user(2)}\tmbid-q\t"Weird" Al\t7',        # quote inside a name (quoting off)
        f"{_user(2)}\tmbid-b\tBand B",               # 3 fields
        f"2007-02-01\tmbid-b\tBand B\t1",            # user field is a date
        f"{_user(3)}\tmbid-b\tBand B\tmany",         # plays not an integer
        f"{_user(3)}\t\t\t2",                        # neither mbid nor name
    ]
    path = tmp_path / "plays.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    plays, report = ld.load_plays(path)
    assert report.rows_read == 9
    assert report.n_malformed == 4 and len(report.malformed) == 4
    assert report.notes["duplicate (user, artist) rows summed"] == 1
    a = plays[(plays["user"] == _user(1)) & (plays["artist"] == "mbid-a")]
    assert a["plays"].tolist() == [15]
    assert (plays["artist"] == "name:the beatles").sum() == 2
    assert '"Weird" Al' in set(plays["artist_name"].astype(str))
    assert report.rows_kept == 5  # 9 read - 4 malformed; the duplicate is summed afterwards


def test_profile_quirks(tmp_path):
    lines = [
        f"{_user(1)}\tm\t-1337\tGermany\tFeb 1, 2007",
        f"{_user(2)}\tf\t2000\tKorea, Republic of\tDec 24, 2008",
        f"{_user(3)}\t\t\tSweden\tnot a date",
        f"{_user(3)}\tm\t30\tSweden\tJan 1, 2005",    # repeated user
        f"{_user(4)}\tx\t25\t\tMar 3, 2006",
        "short\tline",
    ]
    path = tmp_path / "profiles.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    profiles, report = ld.load_profiles(path)
    assert len(profiles) == 4
    assert report.n_malformed == 2
    assert profiles["age"].isna().tolist() == [True, True, True, False]
    assert profiles["gender"].astype(object).fillna("").tolist() == ["m", "f", "", ""]
    assert profiles["country"].astype(object).tolist()[1] == "Korea, Republic of"
    assert pd.isna(profiles["country"].iloc[3]) and pd.isna(profiles["signup"].iloc[2])


def test_align_users_adds_plays_only_users(small_lastfm):
    _, plays, profiles = small_lastfm
    aligned, counts = ld.align_users(plays, profiles)
    played = set(plays["user"].astype(str))
    assert counts["users_without_profile"] == len(played - set(profiles["user"]))
    assert counts["users_without_plays"] == len(set(profiles["user"]) - played)
    assert set(aligned["user"]) == played | set(profiles["user"])


def test_crlf_line_endings_leave_no_carriage_returns(tmp_path):
    path = tmp_path / "profiles.tsv"
    path.write_bytes(f"{_user(1)}\tm\t22\tGermany\tFeb 1, 2007\r\n{_user(2)}\tf\t\tSweden\tMar 2, 2008\r\n".encode())
    profiles, report = ld.load_profiles(path)
    assert report.n_malformed == 0 and profiles["signup"].notna().all()
    assert not profiles["user"].str.contains("\r").any()


def test_rejected_rows_report_their_first_line_numbers_per_reason(tmp_path):
    u = lambda i: f"{i:040x}"  # noqa: E731
    plays = tmp_path / "plays.tsv"
    plays.write_text("\n".join([f"{u(1)}\tmb\tA\t3", "bad\tmb\tA\t3", f"{u(2)}\tmb\tA", f"{u(3)}\tmb\tA\tx",
                                f"{u(4)}\tmb\tA\t3", f"{u(5)}\t\t \t3", "Feb 1, 2007\tmb\tA\t3", f"{u(6)}\tmb\tA\t-1"])
                     + "\n")
    _, report = ld.load_plays(plays)
    assert report.examples == {"not 4 tab-separated fields": [3], "user is not a 40-hex sha1": [2, 7],
                               "plays is not a non-negative integer": [4, 8], "artist mbid and name both empty": [6]}
    assert "user is not a 40-hex sha1 (e.g. line 2, 7)" in report.summary()
    profiles = tmp_path / "profiles.tsv"
    profiles.write_text("\n".join([f"{u(1)}\tm\t20\tX\tFeb 1, 2007", "short", f"{u(1)}\tf\t21\tX\tFeb 1, 2007",
                                   "nosha\tf\t21\tX\tFeb 1, 2007", f"{u(1)}\tf\t22\tX\tFeb 1, 2007"]) + "\n")
    _, report = ld.load_profiles(profiles)
    assert report.examples["repeated user (first row kept)"] == [3, 5]
    assert report.examples["user is not a 40-hex sha1"] == [4]


def test_empty_lines_are_counted_and_keep_line_numbers_exact(tmp_path):
    plays = tmp_path / "plays.tsv"
    plays.write_text(f"{1:040x}\tmb\tA\t3\n\n\nbad\tmb\tA\t3\n{2:040x}\tmb\tA\n")
    _, report = ld.load_plays(plays)
    assert report.rows_read == 5 and report.rows_kept == 1
    assert report.examples == {"not 4 tab-separated fields": [5], "user is not a 40-hex sha1": [2, 3, 4]}
