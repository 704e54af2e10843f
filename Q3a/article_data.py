"""Loading and validating article CSV files (``id,text,tag``) for the tagger.

Every rule raises :class:`ArticleDataError` with one line naming the file, the line or ids, and the fix; rows that
cannot be used are returned with the data, never dropped silently.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

TAG_COLUMN_ALIASES = ("tag", "tags")


class ArticleDataError(ValueError):
    """The input file cannot be used as given; the message says where and how to fix it."""


@dataclass
class Articles:
    """Usable articles and the rows that were left out.

    frame : DataFrame with columns id (str), text (str) and, when tags are required, tag (str)
    left_out_ids : ids of rows with empty text (or empty tag when tags are required), in file order
    """

    frame: pd.DataFrame
    left_out_ids: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return self.frame["id"].tolist()

    @property
    def texts(self) -> list[str]:
        return self.frame["text"].tolist()

    @property
    def tags(self) -> list[str]:
        return self.frame["tag"].tolist()


def decode_csv_bytes(raw: bytes, source: str, encoding: str | None = None) -> str:
    """Decode file bytes; UTF-8 with or without BOM by default.

    Raises ArticleDataError naming the 1-based line of the first undecodable byte and suggesting ``--encoding``.
    """
    codec = encoding or "utf-8-sig"
    try:
        return raw.decode(codec)
    except LookupError:
        raise ArticleDataError(
            f"{source}: unknown encoding {encoding!r}; use a Python codec name such as "
            "utf-8, big5, big5hkscs or gb18030"
        ) from None
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        hint = (
            "pass --encoding (Hong Kong files are often big5 or big5hkscs)"
            if encoding is None
            else "pass the file's real encoding with --encoding"
        )
        raise ArticleDataError(
            f"{source}: line {line}: byte 0x{raw[error.start]:02x} is not valid {codec}; {hint}"
        ) from None


def read_article_table(
    path: Path | str, encoding: str | None = None, text: str | None = None, require_tag: bool = True
) -> pd.DataFrame:
    """Read a CSV as strings (ids keep leading zeros; empty fields become ""), header names stripped.

    ``text`` may hold the already-decoded content (e.g. from stdin); ``path`` then only names the source.
    ``require_tag`` only words the message for an empty file (prediction input needs no tag column).
    """
    source = str(path)
    if text is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as error:
            raise ArticleDataError(f"{source}: cannot read file ({error.strerror})") from None
        text = decode_csv_bytes(raw, source, encoding)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        header = "id,text,tag" if require_tag else "id,text"
        raise ArticleDataError(
            f"{source}: file is empty; expected a header line {header} and one article per row"
        ) from None
    except (pd.errors.ParserError, csv.Error) as error:
        raise ArticleDataError(
            f"{source}: not a valid CSV ({str(error).strip()}); check quoting of the text "
            "field (fields with commas or newlines must be in double quotes)"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def validate_articles(frame: pd.DataFrame, source: str, require_tag: bool = True) -> Articles:
    """Check columns and ids, and set aside rows that cannot be used.

    Parameters
    ----------
    frame : DataFrame of strings as from :func:`read_article_table`
    source : file name used in messages
    require_tag : training data needs ``tag`` (or ``tags``); prediction input does not

    Raises
    ------
    ArticleDataError
        Missing columns (lists the columns found), no data rows, empty ids (lists data row numbers), duplicate
        ids (lists them), or no row with a usable text (and tag).
    """
    tag_column = next((c for c in TAG_COLUMN_ALIASES if c in frame.columns), None)
    needed = ["id", "text"] + (["tag"] if require_tag else [])
    missing = [c for c in needed if c not in frame.columns and not (c == "tag" and tag_column)]
    if missing:
        found = ", ".join(frame.columns) or "(none)"
        raise ArticleDataError(
            f"{source}: missing column(s) {', '.join(missing)}; found columns: {found}; "
            f"expected a header line {','.join(needed)} (tags is accepted for tag)"
        )
    if frame.empty:
        raise ArticleDataError(
            f"{source}: no articles (header only or empty input); add at least one row {','.join(needed)}"
        )
    columns = {"id": frame["id"].str.strip(), "text": frame["text"]}
    if tag_column:
        columns["tag"] = frame[tag_column].str.strip()
    articles = pd.DataFrame(columns)

    empty_ids = [str(i + 1) for i in articles.index[articles["id"] == ""]]
    if empty_ids:
        raise ArticleDataError(f"{source}: empty id in data row(s) {_shorten(empty_ids)}; give every row an id")
    duplicated = articles["id"][articles["id"].duplicated()].unique().tolist()
    if duplicated:
        raise ArticleDataError(f"{source}: duplicate id(s) {_shorten(duplicated)}; ids must be unique")

    unusable = _is_missing(articles["text"])
    if require_tag:
        unusable |= _is_missing(articles["tag"])
    if unusable.all():
        what = "text or tag" if require_tag else "text"
        raise ArticleDataError(
            f"{source}: all {len(articles)} row(s) have an empty {what}; nothing to use - fill in the {what} column"
        )
    return Articles(
        frame=articles[~unusable].reset_index(drop=True), left_out_ids=articles.loc[unusable, "id"].tolist()
    )


def load_articles(path: Path | str, encoding: str | None = None, require_tag: bool = True) -> Articles:
    """Read and validate an article CSV (columns ``id,text,tag``; ``tags`` accepted). See the two steps above."""
    return validate_articles(read_article_table(path, encoding, require_tag=require_tag), str(path), require_tag)


def _is_missing(values: pd.Series) -> pd.Series:
    # A literal NaN is how pandas and spreadsheets write an empty cell back out.
    return values.str.strip().str.lower().isin(["", "nan"])


def _shorten(values: list[str], limit: int = 10) -> str:
    shown = ", ".join(values[:limit])
    return shown if len(values) <= limit else f"{shown} ... ({len(values)} in all)"
