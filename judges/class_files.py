"""Response classes and features in a file: written once, loaded where the classifier is the same.

Classifying a dataset's responses is the slow step of a first demo (about 6,600 responses of
PandaLM and hh-rlhf; the MiniLM embedding of each response and of its prompt, float32 on CPU).
The classes and features depend only on the texts and on the two fingerprints (classifier and
feature extractor), so a file written by `classes_write` holds everything needed to store them
again elsewhere without running the model: `classes_load` stores the rows of the responses that
have none for those fingerprints, matched by the prompt's and the response's content hashes.

A file is loaded only where both fingerprints equal the configured classifier's: a different
head, embedding model, precision or counting rule refuses the file (with the reason), and the
responses are then classified as usual. `seed_demo` loads the files shipped in
`judges/data/classes/` and classifies only what they do not hold; `tests/judges/test_class_files.py`
classifies a sample of the shipped rows again and compares.

Format: gzip JSON lines; line 1 is the header (`format`, `version`, `classifier`, `extractor`,
`classifier_kind`, `classifier_head_sha256`, `dataset`, `rows`), each further line one response:
`prompt` and `response` (content hashes), `label`, `score`, `scores`, `refusal_probability`,
`uncertain`, and the features `length_chars`, `length_tokens`, `headers`, `list_items`, `bold`,
`prompt_similarity`. Loading is all-or-nothing per file, reads the file line by line and stops
at the first bad line with its number.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from django.db import transaction
from django.db.models import Exists, OuterRef

from corpus.models import Dataset, Response
from judges.models import ResponseClass, ResponseClassification, ResponseFeatures

if TYPE_CHECKING:
    from judges.refusal import RefusalClassifier

FORMAT: Final = "tribunal-response-classes"
VERSION: Final = 1
CHUNK: Final = 1_000
CLASSES: Final = tuple(ResponseClass.values)
FEATURES: Final = (
    "length_chars",
    "length_tokens",
    "headers",
    "list_items",
    "bold",
    "prompt_similarity",
)


class ClassFileError(ValueError):
    """A class file that cannot be loaded, with the place (`path:line`) where known."""


@dataclass(frozen=True)
class ClassesLoaded:
    stored: int  # responses that got their class and features from the file
    matched: int  # file rows that found a response of the dataset without rows
    refused: str  # why nothing was loaded ("" when the fingerprints matched)


def _identity(classifier: RefusalClassifier) -> tuple[str, str]:
    from judges.classification import _extractor_for

    return classifier.identity.fingerprint, _extractor_for(classifier)


def _classifier(classifier: RefusalClassifier | None) -> RefusalClassifier:
    from judges.classification import refusal_classifier_configured

    return classifier if classifier is not None else refusal_classifier_configured()


def classes_write(
    *, dataset: Dataset, path: Path, classifier: RefusalClassifier | None = None
) -> int:
    """Write the classes and features stored for ``dataset`` under the configured classifier's
    fingerprints to ``path``; returns the number of responses written (those with both)."""
    classifier = _classifier(classifier)
    fingerprint, extractor = _identity(classifier)
    features_q = ResponseFeatures.objects.filter(response=OuterRef("response"), extractor=extractor)
    classes = (
        ResponseClassification.objects.filter(
            response__prompt__dataset=dataset, classifier=fingerprint
        )
        .filter(Exists(features_q))
        .order_by("response__prompt__content_hash", "response__content_hash")
    )
    count = classes.count()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "classifier": fingerprint,
        "extractor": extractor,
        "classifier_kind": classifier.identity.kind,
        "classifier_head_sha256": classifier.identity.hashed.get("head_sha256"),
        "dataset": dataset.name,
        "rows": count,
    }
    features = {
        row["response_id"]: row
        for row in ResponseFeatures.objects.filter(
            response__prompt__dataset=dataset, extractor=extractor
        ).values("response_id", *FEATURES)
    }
    seen: set[tuple[str, str]] = set()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    written = 0
    # mtime=0: the same rows give the same bytes, so a regenerated file shows no diff.
    with open(temporary, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as stream:
        stream.write(_line(header))
        for row in classes.values(
            "response_id",
            "response__prompt__content_hash",
            "response__content_hash",
            "label",
            "score",
            "scores",
            "refusal_probability",
            "uncertain",
        ).iterator(chunk_size=CHUNK):
            key = (row["response__prompt__content_hash"], row["response__content_hash"])
            if key in seen:  # one text from two models: one line serves both
                continue
            seen.add(key)
            feature = features[row["response_id"]]
            stream.write(
                _line(
                    {
                        "prompt": key[0],
                        "response": key[1],
                        "label": row["label"],
                        "score": row["score"],
                        "scores": row["scores"],
                        "refusal_probability": row["refusal_probability"],
                        "uncertain": row["uncertain"],
                        **{name: feature[name] for name in FEATURES},
                    }
                )
            )
            written += 1
    temporary.replace(path)
    return written


def _line(value: Mapping[str, Any]) -> bytes:
    return (json.dumps(value, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            for number, line in enumerate(stream, start=1):
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ClassFileError(f"{path}:{number}: not JSON: {exc.msg}") from None
                if not isinstance(value, dict):
                    raise ClassFileError(f"{path}:{number}: expected a JSON object")
                yield number, value
    except (OSError, EOFError) as exc:
        raise ClassFileError(f"{path}: {exc}") from None


def _header(path: Path, rows: Iterator[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    first = next(rows, None)
    if first is None:
        raise ClassFileError(f"{path}: empty file")
    _, header = first
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ClassFileError(
            f"{path}:1: not a {FORMAT} file of version {VERSION} "
            f"(format {header.get('format')!r}, version {header.get('version')!r})"
        )
    for name in ("classifier", "extractor"):
        if not isinstance(header.get(name), str):
            raise ClassFileError(f"{path}:1: '{name}' must be a fingerprint")
    return header


def classes_header(path: Path) -> dict[str, Any]:
    """The file's first line (its fingerprints and counts), checked."""
    return _header(path, _rows(path))


def _number(value: Any, where: str, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClassFileError(f"{where}: expected a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ClassFileError(f"{where}: expected a number {bound}, got {value!r}")
    return float(value)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ClassFileError(f"{where}: expected a whole number >= 0, got {value!r}")
    return value


def _objects(
    row: dict[str, Any], where: str, response_id: int, fingerprint: str, extractor: str
) -> tuple[ResponseClassification, ResponseFeatures]:
    label = row.get("label")
    if label not in CLASSES:
        raise ClassFileError(f"{where}: label: expected one of {', '.join(CLASSES)}, got {label!r}")
    scores = row.get("scores")
    if not isinstance(scores, dict) or set(scores) - set(CLASSES):
        raise ClassFileError(f"{where}: scores: expected an object keyed by the classes")
    for name, value in scores.items():
        _number(value, f"{where}: scores.{name}", low=0.0, high=1.0)
    probability = row.get("refusal_probability")
    if probability is not None:
        probability = _number(probability, f"{where}: refusal_probability", low=0.0, high=1.0)
    uncertain = row.get("uncertain")
    if not isinstance(uncertain, bool):
        raise ClassFileError(f"{where}: uncertain: expected true or false, got {uncertain!r}")
    similarity = row.get("prompt_similarity")
    if similarity is not None:
        similarity = _number(similarity, f"{where}: prompt_similarity", low=-1.0, high=1.0)
    return (
        ResponseClassification(
            response_id=response_id,
            classifier=fingerprint,
            label=label,
            score=_number(row.get("score"), f"{where}: score", low=0.0, high=1.0),
            scores=scores,
            refusal_probability=probability,
            uncertain=uncertain,
        ),
        ResponseFeatures(
            response_id=response_id,
            extractor=extractor,
            prompt_similarity=similarity,
            **{
                name: _count(row.get(name), f"{where}: {name}")
                for name in ("length_chars", "length_tokens", "headers", "list_items", "bold")
            },
        ),
    )


def classes_load(
    *, dataset: Dataset, path: Path, classifier: RefusalClassifier | None = None
) -> ClassesLoaded:
    """Store the file's classes and features for the responses of ``dataset`` that have neither
    under the configured classifier's fingerprints. Nothing is stored when the file's
    fingerprints differ (``refused`` says which) or when any line is bad (`ClassFileError`)."""
    classifier = _classifier(classifier)
    fingerprint, extractor = _identity(classifier)
    rows = _rows(path)
    header = _header(path, rows)
    for name, mine in (("classifier", fingerprint), ("extractor", extractor)):
        if header[name] != mine:
            return ClassesLoaded(
                stored=0,
                matched=0,
                refused=(
                    f"{path.name} was written by another {name} ({header[name][:12]}…, "
                    f"this one is {mine[:12]}…): its rows are not used"
                ),
            )
    classified = ResponseClassification.objects.filter(
        response=OuterRef("pk"), classifier=fingerprint
    )
    featurised = ResponseFeatures.objects.filter(response=OuterRef("pk"), extractor=extractor)
    # Only responses with neither row: a half-done response is left to the classifier.
    wanted: dict[tuple[str, str], list[int]] = {}
    for pk, prompt_hash, response_hash in (
        Response.objects.filter(prompt__dataset=dataset, has_text=True)
        .filter(~Exists(classified), ~Exists(featurised))
        .values_list("pk", "prompt__content_hash", "content_hash")
        .iterator(chunk_size=CHUNK)
    ):
        wanted.setdefault((prompt_hash, response_hash), []).append(pk)
    classes: list[ResponseClassification] = []
    features: list[ResponseFeatures] = []
    matched = stored = 0
    with transaction.atomic():
        for number, row in rows:
            where = f"{path}:{number}"
            key = (row.get("prompt"), row.get("response"))
            if not all(isinstance(part, str) for part in key):
                raise ClassFileError(f"{where}: 'prompt' and 'response' must be content hashes")
            ids = wanted.pop(key, None)  # type: ignore[arg-type]
            if not ids:
                continue
            matched += 1
            stored += len(ids)
            for response_id in ids:
                c, f = _objects(row, where, response_id, fingerprint, extractor)
                classes.append(c)
                features.append(f)
            if len(classes) >= CHUNK:
                _store(classes, features)
        _store(classes, features)
    return ClassesLoaded(stored=stored, matched=matched, refused="")


def _store(classes: list[ResponseClassification], features: list[ResponseFeatures]) -> None:
    ResponseClassification.objects.bulk_create(classes, ignore_conflicts=True)
    ResponseFeatures.objects.bulk_create(features, ignore_conflicts=True)
    classes.clear()
    features.clear()
