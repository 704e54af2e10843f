"""Saving and loading a fitted tagger in the skops format, which does not run code on load.

A model file is a skops archive (``skops.io``: a zip of a JSON schema and numpy arrays) holding one dict: the
raw-text model, its tags, off-topic thresholds, cross-validated scores, best parameters, library versions and where
it came from. Loading first lists the types the file would create and refuses the file unless every one of them is
a type this tool writes (:data:`TRUSTED_TYPES`); a pickle, a zip of something else or a skops file with other types
is rejected before anything in it is built.
"""

from __future__ import annotations

import platform
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pycantonese
import scipy
import sklearn
import skops
import skops.io

KIND = "q3a-cantonese-tagger"
FORMAT_VERSION = 2

# Types a tagger file contains beyond the ones skops trusts by default (scikit-learn estimators, numpy, builtins).
TRUSTED_TYPES = [
    "builtins.frozenset",
    "cantonese_tokenizer.CantoneseSegmenter",
    "cantonese_tokenizer.CantoneseTokenizer",
    "cantonese_tokenizer.join_tokens",
    "cantonese_tokenizer.passthrough_tokens",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._tree.Tree",
    "tagger_model.ArticleFolds",
]

# Saved models are refused when any of these differ in major.minor version from the running ones.
VERSIONED_LIBRARIES = {
    "scikit-learn": sklearn,
    "numpy": np,
    "scipy": scipy,
    "pycantonese": pycantonese,
    "skops": skops,
}


class IncompatibleModelError(ValueError):
    """A file given as a model cannot be used here (not a tagger file, unexpected content, other versions)."""


def library_versions() -> dict:
    """Versions of the libraries a saved model depends on, plus Python's: {name: version string}."""
    versions = {name: module.__version__ for name, module in VERSIONED_LIBRARIES.items()}
    versions["python"] = platform.python_version()
    return versions


def save_model(
    path: Path,
    model,
    off_topic: dict,
    scores: dict,
    training_file: Path | str | None = None,
    demo: bool = False,
) -> None:
    """Write the fitted raw-text model and what a user needs to judge it.

    Parameters
    ----------
    path : destination file (parent folders are created)
    model : fitted raw-text pipeline (``tagger_model.with_segmenter``)
    off_topic : the off-topic rule (``tagger_model.off_topic_rule``: topic-evidence thresholds by text length)
    scores : cross-validated scores (JSON-ready dict: accuracy overall and by length, calibration, best_params)
    training_file, demo : where the model came from (absolute path; whether it is the demo corpus)
    """
    bundle = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "model": model,
        "tags": [str(t) for t in model.classes_],
        "off_topic": off_topic,
        "scores": scores,
        "versions": library_versions(),
        "training_file": str(Path(training_file).resolve()) if training_file else None,
        "demo": bool(demo),
        "trained_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    skops.io.dump(bundle, path)


def describe_model(bundle: dict) -> str:
    """One line saying which tag set, training file and date a loaded bundle comes from."""
    source = bundle.get("training_file") or "training file not recorded"
    demo = "DEMO corpus (not real news), " if bundle.get("demo") else ""
    return f"tags {', '.join(bundle['tags'])}; trained on {demo}{source}, {bundle.get('trained_at')}"


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def load_model(path: Path) -> dict:
    """Load a bundle written by :func:`save_model` without running code from the file.

    Raises
    ------
    IncompatibleModelError
        Missing file or folder; not a skops archive (e.g. a pickle); types other than TRUSTED_TYPES (and skops'
        defaults); not a tagger bundle; saved with a different major.minor version of scikit-learn, numpy, scipy,
        pycantonese or skops. The message is one line naming the file and the fix.
    """
    path = Path(path)
    retrain = "train one with `tagging_prediction.py --train CSV --model-out FILE`"
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "no such file"
        raise IncompatibleModelError(f"{path}: {what}; give a model file, or {retrain}")
    if not zipfile.is_zipfile(path):
        raise IncompatibleModelError(
            f"{path}: not a tagger model file (not a skops archive; pickle and joblib files are refused because "
            f"loading them can run code); {retrain}"
        )
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as error:  # any malformed archive: report, do not crash
        raise IncompatibleModelError(f"{path}: not a readable tagger model ({_one_line(error)}); {retrain}") from None
    unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unexpected:
        raise IncompatibleModelError(
            f"{path}: refused, the file would create types this tool does not write: {', '.join(unexpected[:5])}"
            f"{' ...' if len(unexpected) > 5 else ''}; {retrain}"
        )
    try:
        bundle = skops.io.load(path, trusted=untrusted)
    except Exception as error:
        raise IncompatibleModelError(f"{path}: not a readable tagger model ({_one_line(error)}); {retrain}") from None
    if not isinstance(bundle, dict) or bundle.get("kind") != KIND or bundle.get("format_version") != FORMAT_VERSION:
        raise IncompatibleModelError(f"{path}: not a tagger model saved by this version of tagging_prediction.py")
    current = library_versions()
    saved = bundle.get("versions") or {}
    mismatched = [
        f"{name} {saved.get(name)} (running {current[name]})"
        for name in VERSIONED_LIBRARIES
        if _major_minor(str(saved.get(name))) != _major_minor(current[name])
    ]
    if mismatched:
        raise IncompatibleModelError(
            f"{path}: saved with incompatible library versions: {', '.join(mismatched)}; "
            "retrain the model with the installed requirements"
        )
    return bundle


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:200]
