"""Tokenizer on hand-checked sentences, pickling, and segment-once caching (counted calls)."""

import pickle
import unicodedata

import joblib
import pycantonese
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from benchmarks.bench_grid import build_forest_pipeline, build_original_pipeline
from cantonese_tokenizer import CantoneseTokenizer, join_tokens, segment_once, split_on_punctuation
from tagger_model import SNIPPET_LENGTHS, train_tagger

# Segmentations checked by hand by a Cantonese reader.
MIXED = "拜登宣布，由今日起NBA球星LeBron James會喺香港打波！"
MIXED_WORDS = ["拜登", "宣布", "由", "今日", "起", "nba", "球星", "lebron", "james", "會", "喺", "香港", "打波"]
COLLOQUIAL = "佢話：「Apple嘅新iPhone好貴！」"
COLLOQUIAL_WORDS = ["佢", "話", "apple", "嘅", "新", "iphone", "好", "貴"]


def test_pycantonese_glues_fullwidth_comma_which_we_split():
    # The reason for splitting first: pycantonese 5.0.0 returns "宣布，由" as one token.
    assert "宣布，由" in pycantonese.segment(MIXED)
    assert split_on_punctuation("宣布，由今日起！LeBron James「打波」") == [
        "宣布",
        "由今日起",
        "LeBron",
        "James",
        "打波",
    ]


def _is_boundary(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] in "PS"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("香港天氣好NBA a1，。！「」（）,.!?$%～ \n\u3000、：")))
def test_split_on_punctuation_keeps_every_other_character_in_order(text):
    chunks = split_on_punctuation(text)
    assert "".join(chunks) == "".join(ch for ch in text if not _is_boundary(ch))
    assert all(chunk and not any(_is_boundary(ch) for ch in chunk) for chunk in chunks)


def test_mixed_sentence_without_stop_words():
    assert CantoneseTokenizer(stop_words=())(MIXED) == MIXED_WORDS
    assert CantoneseTokenizer(stop_words=())(COLLOQUIAL) == COLLOQUIAL_WORDS


def test_stop_words_and_punctuation_removed_english_lower_cased():
    stop = pycantonese.stop_words()
    expected = [w for w in MIXED_WORDS if w not in stop]
    assert expected == ["拜登", "宣布", "今日", "起", "nba", "球星", "lebron", "james", "香港", "打波"]
    assert CantoneseTokenizer()(MIXED) == expected
    tokens = CantoneseTokenizer()(COLLOQUIAL + "，。！？、「」（）,.!?()$%")
    assert tokens == ["apple", "新", "iphone", "貴"]


def test_tokenizer_pickles_and_gives_same_tokens():
    tokenizer = CantoneseTokenizer()
    for restored in (pickle.loads(pickle.dumps(tokenizer)), joblib.load(_dump(tokenizer))):
        assert restored == tokenizer
        assert restored(MIXED) == tokenizer(MIXED)


def _dump(obj):
    import io

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    buffer.seek(0)
    return buffer


class CountingTokenizer(CantoneseTokenizer):
    """Counts calls per text (module level so it pickles)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __call__(self, text):
        self.calls.append(text)
        return super().__call__(text)


def test_segment_once_calls_tokenizer_once_per_distinct_text():
    texts = ["今日落雨", "球員入球", "今日落雨", "好好食", "球員入球"]
    tokenizer = CountingTokenizer()
    tokens = segment_once(texts, tokenizer, progress=False)
    assert sorted(tokenizer.calls) == sorted(set(texts))
    assert tokens[0] is tokens[2] and tokens[1] is tokens[4]
    assert list(tokens[3]) == CantoneseTokenizer()("好好食")


def test_grid_search_never_resegments(demo_train_path):
    import pandas as pd

    demo = pd.read_csv(demo_train_path, dtype=str)
    tokenizer = CountingTokenizer()
    grid = {"features__words__min_df": [1, 2], "forest__n_estimators": [5, 10]}
    tokenizer.calls.clear()
    train_tagger(
        demo.text.tolist(), demo.tag.tolist(), demo.id.tolist(), tokenizer=tokenizer, param_grid=grid, n_jobs=1
    )
    # 4 candidates x 5 folds + linear candidate + nested calibration + final fit: still one call per distinct
    # text (articles and their first 30/60/120 characters).
    distinct = {text[:n] for text in demo.text for n in SNIPPET_LENGTHS} | set(demo.text)
    assert sorted(tokenizer.calls) == sorted(distinct)


def test_join_tokens_gives_character_ngrams_across_words():
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(analyzer="char", preprocessor=join_tokens, lowercase=False, ngram_range=(1, 2))
    vectorizer.fit([("湖", "人", "nba")])
    assert sorted(vectorizer.get_feature_names_out()) == sorted(["湖", "人", "n", "b", "a", "湖人", "人n", "nb", "ba"])


@pytest.mark.slow
def test_original_arrangement_pickles_to_two_workers(demo_train_path):
    import pandas as pd

    demo = pd.read_csv(demo_train_path, dtype=str)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(build_original_pipeline(), {"forest__n_estimators": [5, 10]}, cv=cv, n_jobs=2)
    search.fit(demo.text.tolist(), demo.tag.tolist())
    # Same folds and parameters on tokens segmented beforehand: identical features, so identical scores.
    tokens = segment_once(demo.text.tolist(), CantoneseTokenizer(), progress=False)
    ours = GridSearchCV(build_forest_pipeline(), {"forest__n_estimators": [5, 10]}, cv=cv, n_jobs=2)
    ours.fit(tokens, demo.tag.tolist())
    assert list(search.cv_results_["mean_test_score"]) == list(ours.cv_results_["mean_test_score"])
    restored = joblib.load(_dump(search.best_estimator_))
    assert list(restored.predict(demo.text.tolist())) == list(search.best_estimator_.predict(demo.text.tolist()))
