"""Loaders: row accounting and the real files' quirks."""

import csv
import random
import re

import pandas as pd
import pytest

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
    assert (
        report.notes["rows without artist mbid keyed by normalised artist name"] == sum(r[1] == "" for r in rows) == 2
    )
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
        f"{_user(1)}\tmbid-a\tBand A\t5",  # duplicate (user, artist): summed
        f"{_user(1)}\t\tThe  Beatles \t3",  # no mbid: keyed by normalised name
        f"{_user(2)}\t\tthe beatles\t4",  # same normalised name
        f'{_user(2)}\tmbid-q\t"Weird" Al\t7',  # quote inside a name (quoting off)
        f"{_user(2)}\tmbid-b\tBand B",  # 3 fields
        "2007-02-01\tmbid-b\tBand B\t1",  # user field is a date
        f"{_user(3)}\tmbid-b\tBand B\tmany",  # plays not an integer
        f"{_user(3)}\t\t\t2",  # neither mbid nor name
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
        f"{_user(3)}\tm\t30\tSweden\tJan 1, 2005",  # repeated user
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
    plays.write_text(
        "\n".join(
            [
                f"{u(1)}\tmb\tA\t3",
                "bad\tmb\tA\t3",
                f"{u(2)}\tmb\tA",
                f"{u(3)}\tmb\tA\tx",
                f"{u(4)}\tmb\tA\t3",
                f"{u(5)}\t\t \t3",
                "Feb 1, 2007\tmb\tA\t3",
                f"{u(6)}\tmb\tA\t-1",
            ]
        )
        + "\n"
    )
    _, report = ld.load_plays(plays)
    assert report.examples == {
        "not 4 tab-separated fields": [3],
        "user is not a 40-hex sha1": [2, 7],
        "plays is not a non-negative integer": [4, 8],
        "artist mbid and name both empty": [6],
    }
    assert "user is not a 40-hex sha1 (e.g. line 2, 7)" in report.summary()
    profiles = tmp_path / "profiles.tsv"
    profiles.write_text(
        "\n".join(
            [
                f"{u(1)}\tm\t20\tX\tFeb 1, 2007",
                "short",
                f"{u(1)}\tf\t21\tX\tFeb 1, 2007",
                "nosha\tf\t21\tX\tFeb 1, 2007",
                f"{u(1)}\tf\t22\tX\tFeb 1, 2007",
            ]
        )
        + "\n"
    )
    _, report = ld.load_profiles(profiles)
    assert report.examples["repeated user (first row kept)"] == [3, 5]
    assert report.examples["user is not a 40-hex sha1"] == [4]


def test_empty_lines_are_counted_and_keep_line_numbers_exact(tmp_path):
    plays = tmp_path / "plays.tsv"
    plays.write_text(f"{1:040x}\tmb\tA\t3\n\n\nbad\tmb\tA\t3\n{2:040x}\tmb\tA\n")
    _, report = ld.load_plays(plays)
    assert report.rows_read == 5 and report.rows_kept == 1
    assert report.examples == {"not 4 tab-separated fields": [5], "user is not a 40-hex sha1": [2, 3, 4]}


def _reference_plays(lines):
    """Independent reading of plays lines by the documented rules (pure Python, one line at a time).

    Returns (malformed {reason: [line numbers]}, rows [(user, artist key, mbid, name, plays)] in order of each
    (user, artist) pair's first line, duplicates summed up to the int32 maximum; mbid/name are the first
    spelling of the artist key).
    """
    malformed, pairs, spelling = {}, {}, {}
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) != 4 and line:  # an empty line is a row of empty fields (see the empty-lines test)
            reason = "not 4 tab-separated fields"
        elif not re.fullmatch("[0-9a-f]{40}", fields[0]):
            reason = "user is not a 40-hex sha1"
        elif not re.fullmatch("[0-9]{1,9}", fields[3]):
            reason = "plays is not a non-negative integer"
        elif fields[1] == "" and fields[2].strip() == "":
            reason = "artist mbid and name both empty"
        else:
            user, mbid, name, plays = fields
            key = mbid or "name:" + " ".join(name.lower().split())
            spelling.setdefault(key, (mbid, name))
            pairs[user, key] = pairs.get((user, key), 0) + int(plays)
            continue
        malformed.setdefault(reason, []).append(number)
    return malformed, [(u, k, *spelling[k], min(p, 2**31 - 1)) for (u, k), p in pairs.items()]


def _random_plays_lines(n_lines, seed):
    """Plays lines with every quirk, users and artists scattered so repeats land in different read blocks."""
    rng = random.Random(seed)
    users = [_user(rng.randrange(1 << 40)) for _ in range(12)]
    artists = [(f"mbid-{i:03d}", f"Band {i}") for i in range(30)] + [
        ("", "The  Beatles"),
        ("", " the beatles"),
        ("", "Sigur Rós"),
        ("mbid-q", '"Weird" Al'),
    ]
    lines = []
    for _ in range(n_lines):
        mbid, name = rng.choice(artists)
        line = [rng.choice(users), mbid, name, str(rng.choice([0, 1, 7, 120, 999999999]))]
        quirk = rng.random()
        if quirk < 0.03:
            line[0] = "Feb 1, 2007"  # user field is a date
        elif quirk < 0.06:
            line[3] = rng.choice(["many", "-1", "1.5", "1234567890"])
        elif quirk < 0.08:
            line[1:3] = ["", rng.choice(["", "  "])]  # neither mbid nor name
        elif quirk < 0.10:
            line = line[:3]  # 3 fields
        elif quirk < 0.11:
            line = []  # empty line
        lines.append("\t".join(line))
    return lines


def test_plays_match_an_independent_reading_across_read_blocks(tmp_path):
    lines = _random_plays_lines(600, seed=3)
    path = tmp_path / "plays.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert path.stat().st_size > 30 * 1024  # many 1 KiB blocks, each with its own dictionaries
    malformed, expected = _reference_plays(lines)
    blocks = {}  # (user, mbid, name) -> read blocks (1 KiB) holding the line: some duplicates span blocks
    offset = 0
    for line in lines:
        blocks.setdefault(tuple(line.split("\t")[:3]), set()).add(offset // 1024)
        offset += len(line.encode()) + 1
    assert sum(len(b) > 1 for b in blocks.values()) > 10
    plays, report = ld.load_plays(path, block_size=1024)
    assert report.rows_read == len(lines)
    assert report.malformed == {reason: len(numbers) for reason, numbers in malformed.items()}
    assert report.examples == {reason: numbers[:5] for reason, numbers in malformed.items()}
    kept = len(lines) - sum(len(numbers) for numbers in malformed.values())
    assert report.rows_kept == kept
    assert report.notes["duplicate (user, artist) rows summed"] == kept - len(expected) > 0
    got = list(zip(*(plays[c].astype(object) for c in ("user", "artist", "artist_mbid", "artist_name", "plays"))))
    assert got == expected  # same rows, same first-line order, same sums, same first spellings
    assert list(plays["user"].cat.categories) == list(dict.fromkeys(row[0] for row in expected))
    assert list(plays["artist"].cat.categories) == list(dict.fromkeys(row[1] for row in expected))
    assert (plays["plays"] == 999999999 * 2).any()  # sums beyond 9 digits kept (int32)
    clipped = sum(p == 2**31 - 1 for *_, p in expected)
    assert clipped and report.notes["(user, artist) play sums above 2,147,483,647 set to it"] == clipped
    one_block, _ = ld.load_plays(path)
    pd.testing.assert_frame_equal(plays, one_block)


def test_plays_crlf_and_a_bad_user_deep_inside_a_block(tmp_path):
    lines = [f"{_user(i % 7)}\tmbid-{i % 5}\tBand {i % 5}\t{i}" for i in range(200)]
    lines[150] = "not-a-sha1\tmbid-1\tBand 1\t3"
    path = tmp_path / "plays.tsv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    plays, report = ld.load_plays(path, block_size=1024)
    assert report.malformed == {"user is not a 40-hex sha1": 1} and report.examples["user is not a 40-hex sha1"] == [
        151
    ]
    assert int(plays["plays"].sum()) == sum(range(200)) - 150
    assert not any("\r" in str(x) for c in plays.columns[:4] for x in plays[c].cat.categories)


def test_non_utf8_plays_file_names_the_line_in_any_block(tmp_path):
    path = tmp_path / "plays.tsv"
    good = [f"{_user(i)}\tmbid\tBand\t{i}".encode() for i in range(100)]
    path.write_bytes(b"\n".join(good[:70] + [f"{_user(1)}\tmbid\tBand \xe9\t1".encode("latin-1")] + good[70:]) + b"\n")
    with pytest.raises(ValueError, match="not UTF-8 text at line 71;"):
        ld.load_plays(path, block_size=1024)


# --- HetRec 2011 Last.fm 2K ------------------------------------------------------------------------------------------
def test_hetrec_file_loads_every_row_like_an_independent_reading(hetrec_plays):
    plays, report = ld.load_hetrec(hetrec_plays)
    with open(hetrec_plays, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    assert report.rows_read == report.rows_kept == len(rows) and not report.malformed
    expected = {(u, a): int(w) for u, a, w in rows}
    got = dict(zip(zip(plays["user"].astype(str), plays["artist"].astype(str)), plays["plays"].tolist()))
    assert got == expected
    assert plays["user"].nunique() == len({u for u, _, _ in rows})
    with open(hetrec_plays.with_name(ld.HETREC_ARTISTS_FILE), encoding="utf-8") as f:
        names = {line.split("\t")[0]: line.split("\t")[1] for line in f.read().splitlines()[1:]}
    first = plays.iloc[0]
    assert first["artist_name"] == names[first["artist"]]


def test_hetrec_detection_bad_rows_and_users_without_profiles(tmp_path):
    path = tmp_path / ld.HETREC_PLAYS_FILE
    path.write_text("userID\tartistID\tweight\n2\t51\t10\n2\t52\tx\n3\t51\t4\n3\t51\t1\n4\t9\n", encoding="utf-8")
    assert ld.is_hetrec(path)
    plays, report = ld.load_hetrec(path)
    assert report.rows_read == 5 and report.rows_kept == 3
    assert report.malformed == {"not 3 tab-separated fields": 1, "a field is not a non-negative integer": 1}
    assert report.examples["not 3 tab-separated fields"] == [6]
    assert report.notes["duplicate (user, artist) rows summed"] == 1
    assert sorted(zip(plays["user"].astype(str), plays["artist"].astype(str), plays["plays"])) == [
        ("2", "51", 10),
        ("3", "51", 5),
    ]
    assert (plays["artist_name"] == "artist 51").all()  # no artists.dat beside the file
    profiles, counts = ld.align_users(plays, ld.empty_profiles())
    assert counts == {"users_without_plays": 0, "users_without_profile": 2} and profiles["age"].isna().all()
    (tmp_path / "other.tsv").write_text("a\tb\tc\td\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a HetRec user_artists.dat"):
        ld.load_hetrec(tmp_path / "other.tsv")
