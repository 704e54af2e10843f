"""Every bad-input rule of the article loader on hand-made files: loader and CLI level (one stderr line, exit 2)."""

import pytest

from article_data import ArticleDataError, load_articles
from tagger_model import TrainingDataError, make_folds
from tagging_prediction import main

GOOD = 'id,text,tag\n007,"第一行\n第二行，有逗號",天氣\n8,球員入球,足球\n'


def test_bom_leading_zero_ids_and_embedded_newlines(write_csv, tmp_path):
    articles = load_articles(write_csv(tmp_path / "a.csv", "\ufeff" + GOOD))
    assert articles.ids == ["007", "8"]
    assert articles.texts[0] == "第一行\n第二行，有逗號"
    assert articles.tags == ["天氣", "足球"]
    assert articles.left_out_ids == []


def test_tags_column_alias(write_csv, tmp_path):
    articles = load_articles(write_csv(tmp_path / "a.csv", GOOD.replace(",tag\n", ",tags\n", 1)))
    assert articles.tags == ["天氣", "足球"]


def test_big5_needs_encoding_and_error_names_line(write_csv, tmp_path):
    path = write_csv(tmp_path / "big5.csv", "id,text,tag\n1,hello,a\n2,香港天氣,天氣\n", encoding="big5")
    with pytest.raises(ArticleDataError, match=r"line 3: .*--encoding"):
        load_articles(path)
    assert load_articles(path, encoding="big5").texts == ["hello", "香港天氣"]


def test_empty_and_nan_rows_are_reported_not_silently_dropped(write_csv, tmp_path):
    path = write_csv(tmp_path / "a.csv", "id,text,tag\n1,今日落雨,天氣\n2,,天氣\n3,球員入球,\n4,NaN,足球\n5,  ,足球\n")
    articles = load_articles(path)
    assert articles.ids == ["1"]
    assert articles.left_out_ids == ["2", "3", "4", "5"]
    # Prediction input needs no tag, so only the empty-text rows are left out there.
    assert load_articles(path, require_tag=False).left_out_ids == ["2", "4", "5"]


def test_duplicate_ids_named(write_csv, tmp_path):
    path = write_csv(tmp_path / "a.csv", "id,text,tag\n1,甲,a\n2,乙,a\n1,丙,b\n2,丁,b\n3,戊,b\n")
    with pytest.raises(ArticleDataError, match=r"duplicate id\(s\) 1, 2;"):
        load_articles(path)


def test_missing_columns_list_found_columns(write_csv, tmp_path):
    path = write_csv(tmp_path / "a.csv", "ident,body,tag\n1,甲,a\n")
    with pytest.raises(ArticleDataError, match=r"missing column\(s\) id, text; found columns: ident, body, tag"):
        load_articles(path)


def test_small_class_means_fewer_folds_with_warning_or_error():
    cv, messages = make_folds(["a"] * 10 + ["b"] * 3)
    assert cv.get_n_splits() == 3
    assert len(messages) == 1 and "'b' has only 3 articles" in messages[0] and "3-fold" in messages[0]
    assert make_folds(["a"] * 10 + ["b"] * 5)[1] == []
    with pytest.raises(TrainingDataError, match="'b' has only 1 article"):
        make_folds(["a"] * 10 + ["b"])
    with pytest.raises(TrainingDataError, match="1 distinct tag"):
        make_folds(["a"] * 10)


@pytest.mark.parametrize(
    "content, encoding, extra, message",
    [
        ("id,text,tag\n1,香港天氣,天氣\n", "big5", [], "line 2: byte 0x"),
        ("id,text,tag\n1,甲,a\n1,乙,b\n", "utf-8", [], "duplicate id(s) 1;"),
        ("id,body\n1,甲\n", "utf-8", [], "found columns: id, body"),
        ("id,text,tag\n1,甲,a\n2,乙,b\n", "utf-8", [], "has only 1 article; every tag needs"),
        ("id,text,tag\n1,甲,a\n", "utf-8", ["--encoding", "no-such-codec"], "unknown encoding"),
    ],
)
def test_cli_reports_one_line_and_exit_code_2(write_csv, tmp_path, capsys, content, encoding, extra, message):
    path = write_csv(tmp_path / "in.csv", content, encoding)
    code = main(
        [
            "--train",
            str(path),
            "--quick",
            "--out",
            str(tmp_path / "p.csv"),
            "--model-out",
            str(tmp_path / "m.joblib"),
            "--report-dir",
            str(tmp_path),
            *extra,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not any("Traceback" in line for line in err)


def test_cli_refuses_to_overwrite_user_file(write_csv, tmp_path, capsys, demo_train_path):
    existing = write_csv(tmp_path / "mine.csv", "keep me")
    code = main(["--train", str(demo_train_path), "--quick", "--out", str(existing)])
    assert code == 2 and "--overwrite" in capsys.readouterr().err
    assert existing.read_text() == "keep me"
