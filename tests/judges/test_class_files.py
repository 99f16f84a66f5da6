"""Response classes and features in a file: written, loaded elsewhere without the model, refused
when the classifier differs; and the files the demo ships agree with the classifier today."""

from __future__ import annotations

import gzip
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from corpus.importers.services import dataset_for_import, import_file
from corpus.models import Dataset, Response
from judges import features
from judges.class_files import ClassFileError, classes_header, classes_load, classes_write
from judges.classification import _extractor_for, responses_analyse
from judges.models import ResponseClassification, ResponseFeatures
from judges.refusal import load_default_classifier
from tests.judges.test_classification_runs import make_xstest_dataset

SHIPPED = Path(__file__).resolve().parents[2] / "judges" / "data" / "classes"
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FEATURE_FIELDS = ("length_chars", "length_tokens", "headers", "list_items", "bold")


def _rows(dataset: Dataset) -> dict[str, tuple[Any, ...]]:
    """Each response's class and features, keyed by its text."""
    classes = {
        c.response.text: (c.label, round(c.score, 9), c.refusal_probability, c.uncertain)
        for c in ResponseClassification.objects.filter(
            response__prompt__dataset=dataset
        ).select_related("response")
    }
    return {
        f.response.text: (
            *classes[f.response.text],
            *(getattr(f, name) for name in FEATURE_FIELDS),
            f.prompt_similarity,
        )
        for f in ResponseFeatures.objects.filter(response__prompt__dataset=dataset).select_related(
            "response"
        )
    }


def _no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model ran")

    monkeypatch.setattr(features, "analyse_responses", refuse)


@dataclass
class Written:
    source: Dataset
    path: Path
    rows: int


@pytest.fixture
def written(db: None, tmp_path: Path) -> Written:
    """An XSTest data set classified by the model and written to a class file."""
    source = make_xstest_dataset("xstest-a")
    responses_analyse(dataset=source)
    path = tmp_path / "classes.jsonl.gz"
    return Written(source, path, classes_write(dataset=source, path=path))


def test_a_file_stores_the_same_classes_and_features_in_another_database_without_the_model(
    written: Written, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, path = written.source, written.path
    assert written.rows == 5  # the verdict-only response has none
    header = classes_header(path)
    classifier = load_default_classifier()
    assert header["classifier"] == classifier.identity.fingerprint
    assert header["extractor"] == _extractor_for(classifier)

    target = make_xstest_dataset("xstest-b")
    _no_model(monkeypatch)
    loaded = classes_load(dataset=target, path=path)
    assert (loaded.stored, loaded.matched, loaded.refused) == (5, 5, "")
    assert _rows(target) == _rows(source)
    # Loaded twice: nothing new, nothing doubled.
    assert classes_load(dataset=target, path=path).stored == 0
    assert ResponseClassification.objects.filter(response__prompt__dataset=target).count() == 5


def _rewrite(path: Path, edit: Any) -> None:
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        lines = [json.loads(line) for line in stream]
    edit(lines)
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.writelines(json.dumps(line) + "\n" for line in lines)


def test_a_file_from_another_classifier_is_refused_with_the_reason(
    written: Written, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = written.path
    _rewrite(path, lambda lines: lines[0].update(classifier="0" * 64))
    target = make_xstest_dataset("xstest-b")
    _no_model(monkeypatch)
    loaded = classes_load(dataset=target, path=path)
    assert loaded.stored == 0
    assert "another classifier (000000000000…" in loaded.refused
    assert not ResponseClassification.objects.filter(response__prompt__dataset=target).exists()
    with pytest.raises(CommandError, match="another classifier"):
        call_command("response_classes", "load", "xstest-b", str(path))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: lines[3].update(label="maybe"), r":4: label: expected one of normal"),
        (lambda lines: lines[2].update(score=1.5), r":3: score: expected a number in \[0"),
        (lambda lines: lines[5].pop("uncertain"), r":6: uncertain: expected true or false"),
        (lambda lines: lines[0].update(format="csv"), r":1: not a tribunal-response-classes"),
    ],
)
def test_a_bad_line_is_named_and_nothing_is_stored(
    written: Written, edit: Any, message: str
) -> None:
    path = written.path
    _rewrite(path, edit)
    target = make_xstest_dataset("xstest-b")
    with pytest.raises(ClassFileError, match=message):
        classes_load(dataset=target, path=path)
    assert not ResponseClassification.objects.filter(response__prompt__dataset=target).exists()
    assert not ResponseFeatures.objects.filter(response__prompt__dataset=target).exists()


SHIPPED_SETS = [
    ("pandalm", "pandalm", ["pandalm/testset-v1.json"]),
    ("hh-rlhf", "hh-rlhf", ["hh-rlhf/harmless-base-test.jsonl.gz"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "fmt", "files"), SHIPPED_SETS)
def test_the_shipped_files_hold_every_demo_response_as_the_classifier_classes_it_today(
    db: None, name: str, fmt: str, files: list[str]
) -> None:
    """The demo loads these files instead of classifying: they must be the classifier's
    answers. Every response of the imported data set is in the file, under today's
    fingerprints, and a random sample of 40 classified again gives the same rows."""
    path = SHIPPED / f"{name}.jsonl.gz"
    classifier = load_default_classifier()
    header = classes_header(path)
    assert (header["classifier"], header["extractor"]) == (
        classifier.identity.fingerprint,
        _extractor_for(classifier),
    ), f"{path.name} is stale: regenerate it with `manage.py response_classes export`"
    dataset = dataset_for_import(name=name)
    for file in files:
        assert import_file(dataset=dataset, fmt=fmt, path=DATA / file).status == "done"
    eligible = Response.objects.filter(prompt__dataset=dataset, has_text=True, text__regex=r"\S")
    loaded = classes_load(dataset=dataset, path=path)
    assert loaded.stored == eligible.count()

    stored = list(
        ResponseFeatures.objects.filter(response__prompt__dataset=dataset)
        .select_related("response__prompt")
        .order_by("pk")
    )
    sample = random.Random(7).sample(stored, 40)
    fresh = features.analyse_responses(
        [f.response.prompt.text for f in sample],
        [f.response.text for f in sample],
        classifier=classifier,
    )
    classes = {
        c.response_id: c
        for c in ResponseClassification.objects.filter(response__in=[f.response for f in sample])
    }
    # In bfloat16 a text's vector depends slightly on the batch it is padded with (the matrix
    # kernels round differently for other shapes): up to 5e-5 in 1 - cosine between the
    # whole data set's batches and this sample's (PandaLM, measured alike before and after
    # the embedding workers). That moves a cosine between two such vectors by up to about
    # 1e-3 and the head's logits by about 0.01, so the score is compared as a logit there,
    # where that noise does not depend on how close the probability is to 0.5. float32
    # agrees to 1e-4 either way.
    bfloat16 = classifier.embedder.precision == "bfloat16"
    tolerance = 2e-3 if bfloat16 else 1e-4

    def logit(p: float) -> float:
        p = min(max(p, 1e-12), 1.0 - 1e-12)
        return math.log(p / (1.0 - p))

    for row, again in zip(sample, fresh, strict=True):
        shipped = classes[row.response_id]
        assert shipped.label == again.classification.label
        if bfloat16:
            assert logit(shipped.score) == pytest.approx(
                logit(again.classification.score), abs=0.03
            )
        else:
            assert shipped.score == pytest.approx(again.classification.score, abs=1e-4)
        assert (row.length_chars, row.length_tokens, row.headers, row.list_items, row.bold) == (
            again.features.length_chars,
            again.features.length_tokens,
            again.features.headers,
            again.features.list_items,
            again.features.bold,
        )
        assert row.prompt_similarity == pytest.approx(
            again.features.prompt_similarity, abs=tolerance
        )
