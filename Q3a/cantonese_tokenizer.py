"""Cantonese word segmentation for bag-of-words models: a picklable tokenizer and segment-once helpers.

The segmenter is PyCantonese's DAG+HMM word segmenter (``pycantonese.segment``, Lee et al., PyCantonese 5.0,
trained on HKCanCor and rime-cantonese). Its model object does not pickle, so :class:`CantoneseTokenizer` only
holds plain data and reaches the segmenter through the library's own per-process cache at call time.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence

import pandas as pd
import pycantonese
from sklearn.base import BaseEstimator, TransformerMixin
from tqdm import tqdm

# Unicode categories P* (punctuation) and S* (symbols: $, +, ＄, ～ ...) mark chunk boundaries, together with
# whitespace. The class is generated once from the whole BMP so that full-width (，。！「」) and ASCII marks are
# treated alike without a hand-kept list.
_BOUNDARY_CHARS = "".join(chr(code) for code in range(0x10000) if unicodedata.category(chr(code))[0] in "PS")
_BOUNDARY_RE = re.compile("[\\s" + re.escape(_BOUNDARY_CHARS) + "]+")


def split_on_punctuation(text: str) -> list[str]:
    """Split ``text`` into chunks at every run of punctuation, symbols or whitespace.

    Needed because pycantonese 5.0.0 only strips punctuation at the edges of a word, so ``"宣布，由"`` comes out
    of ``pycantonese.segment`` as one token. Returns the non-empty chunks in order; punctuation is dropped.
    """
    return [chunk for chunk in _BOUNDARY_RE.split(text) if chunk]


class CantoneseTokenizer:
    """Callable turning one article into a list of word tokens.

    Steps: split at punctuation/symbols/whitespace (full-width and ASCII), segment each chunk with
    ``pycantonese.segment``, lower-case (affects Latin script only), drop pycantonese's stop words
    (``pycantonese.stop_words()``, 104 Cantonese function words) and any token without a letter or digit.

    Parameters
    ----------
    stop_words : iterable of str or None
        Words to drop; ``None`` means ``pycantonese.stop_words()``. Pass ``()`` to keep every word.

    A module-level class with only plain attributes, so it pickles (``joblib.dump``, ``GridSearchCV(n_jobs=-1)``).
    """

    def __init__(self, stop_words: Iterable[str] | None = None):
        self.stop_words = frozenset(pycantonese.stop_words() if stop_words is None else stop_words)

    def __call__(self, text: str) -> list[str]:
        tokens: list[str] = []
        for chunk in split_on_punctuation(text):
            for word in pycantonese.segment(chunk):
                word = word.lower()
                # The segmenter can still return a stray mark (e.g. a symbol it glued to a digit); the
                # isalnum check drops it without a second list of punctuation.
                if word not in self.stop_words and any(ch.isalnum() for ch in word):
                    tokens.append(word)
        return tokens

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CantoneseTokenizer) and other.stop_words == self.stop_words

    def __hash__(self) -> int:
        return hash(self.stop_words)

    def __repr__(self) -> str:
        return f"CantoneseTokenizer(<{len(self.stop_words)} stop words>)"


def segment_once(
    texts: Sequence[str], tokenizer: Callable[[str], list[str]], progress: bool | None = None
) -> list[tuple[str, ...]]:
    """Tokenize every distinct text exactly once.

    Parameters
    ----------
    texts : sequence of str, length n_documents
    tokenizer : callable str -> list of str
    progress : bool or None
        Show a tqdm bar; ``None`` shows it only when stderr is a terminal.

    Returns
    -------
    list of tuple of str, length n_documents
        Token tuples in the order of ``texts``; identical texts share one tuple (one tokenizer call).
    """
    if progress is None:
        progress = sys.stderr.isatty()
    cache: dict[str, tuple[str, ...]] = {}
    for text in tqdm(texts, desc="segmenting", unit="doc", disable=not progress, leave=False):
        if text not in cache:
            cache[text] = tuple(tokenizer(text))
    return [cache[text] for text in texts]


def passthrough_tokens(tokens: Sequence[str]) -> Sequence[str]:
    """Analyzer for ``CountVectorizer``/``TfidfVectorizer`` on already-segmented documents (returns its input)."""
    return tokens


def join_tokens(tokens: Sequence[str]) -> str:
    """Preprocessor for a character n-gram ``CountVectorizer`` on segmented documents: the tokens glued back
    together (punctuation and stop words stay out), so character n-grams also span word boundaries, which recovers
    names the segmenter split (``湖`` + ``人``)."""
    return "".join(tokens)


class CantoneseSegmenter(TransformerMixin, BaseEstimator):
    """Pipeline step: raw article texts -> a DataFrame with one column ``tokens`` (token tuples, see
    :func:`segment_once`).

    Put in front of the tagger's feature step (which reads the ``tokens`` column) so that a saved pipeline takes
    raw text, while grid search runs on tokens segmented once beforehand.
    """

    def __init__(self, tokenizer: Callable[[str], list[str]] | None = None):
        self.tokenizer = tokenizer

    def fit(self, X, y=None):
        return self

    def transform(self, X) -> pd.DataFrame:
        """X : sequence of str, length n_documents -> DataFrame with column ``tokens``, n_documents rows."""
        return pd.DataFrame({"tokens": segment_once(list(X), self.tokenizer or CantoneseTokenizer(), progress=False)})
