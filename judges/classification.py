"""Writes for refusal classes and text features: `responses_analyse` and classification runs.

Kept beside `judges.services` (which holds judge versions and runs) because it is a separate
workflow with its own progress record. The pages, the REST API, the `classify_responses`
command and the `judges.classification_run` task all call these functions; the computation
itself is pure code in `judges.features` and `judges.refusal`.

What is stored, per response with text:

- one `ResponseClassification` per classifier fingerprint (class, its probability, and the
  probability of every class);
- one `ResponseFeatures` per extractor fingerprint (lengths, markdown counts, similarity to
  the response's prompt).

A response that already has both rows for the current fingerprints is never read into the
classifier again: a rerun over an unchanged dataset computes nothing. Rows are inserted with
`ignore_conflicts`, so two runs racing over the same dataset cannot fail on the unique
constraints; they only repeat some work.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone

from config.leases import WORKER_LOST, Heartbeat, lease_expired, lease_take, max_attempts
from config.tasks import enqueue
from corpus.models import Dataset, Response
from judges.models import (
    ClassificationRun,
    ResponseClass,
    ResponseClassification,
    ResponseFeatures,
)

if TYPE_CHECKING:
    from judges.features import AnalysedResponse
    from judges.refusal import RefusalClassifier

log = logging.getLogger(__name__)

# The classes, in the classifier's order (judges.refusal.CLASSES; a test keeps them in step).
# The classifier and the features are imported when first used: they bring numpy (and, once a
# model loads, torch), which a web process serving pages never needs.
CLASSES: Final = tuple(ResponseClass.values)

BATCH_SIZE: Final = 256
# A pending run not started after this long is presumed lost (the process that was to run it
# went away); starting a new run marks it failed instead of waiting for it. A running run is
# judged by its lease (config.leases), which expires within a minute of its worker's death.
STALE_AFTER: Final = timedelta(minutes=30)
ACTIVE: Final = (ClassificationRun.Status.PENDING, ClassificationRun.Status.RUNNING)
_NOT_A_MAP: Final = (
    "REFUSAL_LABEL_MAP must be a JSON object mapping each of the model's labels to one of "
    + ", ".join(CLASSES)
)


class RefusalClassifierConfigError(ImproperlyConfigured):
    """REFUSAL_MODEL_DIR / REFUSAL_LABEL_MAP do not describe a usable classifier."""


ProgressHook = Callable[[ClassificationRun], None]


# --- which classifier ------------------------------------------------------------------------


def _refusal_setting() -> tuple[Path, dict[str, str]] | None:
    """The configured model directory and label map, checked without loading the model;
    None for the default classifier."""
    model_dir = (settings.REFUSAL_MODEL_DIR or "").strip()
    raw_map = (settings.REFUSAL_LABEL_MAP or "").strip()
    if not model_dir:
        if raw_map:
            raise RefusalClassifierConfigError(
                "REFUSAL_LABEL_MAP is set but REFUSAL_MODEL_DIR is empty: set both to use your "
                "own classifier, or neither for the default one"
            )
        return None
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise RefusalClassifierConfigError(f"REFUSAL_MODEL_DIR={model_dir!r}: not a directory")
    if not (path / "config.json").is_file():
        raise RefusalClassifierConfigError(
            f"REFUSAL_MODEL_DIR={model_dir!r} has no config.json: save the model there with "
            "save_pretrained()"
        )
    if not raw_map:
        raise RefusalClassifierConfigError(f"REFUSAL_MODEL_DIR is set but {_NOT_A_MAP}")
    try:
        label_map = json.loads(raw_map)
    except json.JSONDecodeError as exc:
        raise RefusalClassifierConfigError(
            f"REFUSAL_LABEL_MAP is not valid JSON ({exc.msg} at column {exc.colno}); {_NOT_A_MAP}"
        ) from None
    if (
        not isinstance(label_map, dict)
        or not label_map
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in label_map.items())
    ):
        raise RefusalClassifierConfigError(_NOT_A_MAP)
    unknown = sorted({v for v in label_map.values() if v not in CLASSES})
    if unknown:
        raise RefusalClassifierConfigError(
            f"REFUSAL_LABEL_MAP maps to {unknown}, which are not classes; use {', '.join(CLASSES)}"
        )
    return path, label_map


def refusal_classifier_check() -> None:
    """Raise `RefusalClassifierConfigError` if the settings are unusable; loads nothing, so it
    is cheap enough to call before a run is queued."""
    _refusal_setting()


def refusal_classifier_configured() -> RefusalClassifier:
    """The classifier this installation uses: the user's transformers model when
    ``settings.REFUSAL_MODEL_DIR`` is set (with ``settings.REFUSAL_LABEL_MAP``, a JSON object
    from each model label to one of our classes), else the offline default (MiniLM + head).

    Raises `RefusalClassifierConfigError` saying which setting to fix. Never downloads.
    """
    from judges.refusal import (
        ClassifierLoadError,
        load_default_classifier,
        load_transformers_classifier,
    )

    configured = _refusal_setting()
    if configured is None:
        return load_default_classifier()
    path, label_map = configured
    try:
        return load_transformers_classifier(path, label_map)
    except ClassifierLoadError as exc:
        raise RefusalClassifierConfigError(f"REFUSAL_MODEL_DIR={str(path)!r}: {exc}") from None


def analyse_responses(
    prompts: Sequence[str | None], texts: Sequence[str], *, classifier: RefusalClassifier
) -> list[AnalysedResponse]:
    """`judges.features.analyse_responses`, imported on first use."""
    from judges import features

    return features.analyse_responses(prompts, texts, classifier=classifier)


def _extractor_for(classifier: RefusalClassifier) -> str:
    from judges.features import extractor_fingerprint
    from judges.refusal import DefaultRefusalClassifier

    # analyse_responses computes features with the default classifier's own embedder, and
    # with the shared MiniLM for any other classifier; the fingerprint follows the same rule.
    if isinstance(classifier, DefaultRefusalClassifier):
        return extractor_fingerprint(classifier.embedder)
    return extractor_fingerprint()


# --- the analysis ----------------------------------------------------------------------------


def _with_text(dataset: Dataset) -> QuerySet[Response]:
    """The dataset's responses that have a text to classify (verdict-only imports have none;
    a blank text says nothing about refusal)."""
    return Response.objects.filter(prompt__dataset=dataset, has_text=True, text__regex=r"\S")


def _class_counts(dataset: Dataset, classifier: str) -> Counter[str]:
    rows = (
        ResponseClassification.objects.filter(
            response__prompt__dataset=dataset, classifier=classifier
        )
        .values("label")
        .annotate(n=Count("pk"))
        .values_list("label", "n")
    )
    return Counter(dict(rows))


def _all_classes(counts: Counter[str]) -> dict[str, int]:
    return {label: int(counts.get(label, 0)) for label in CLASSES}


def responses_analyse(
    *,
    dataset: Dataset,
    classifier: RefusalClassifier | None = None,
    batch_size: int = BATCH_SIZE,
    run: ClassificationRun | None = None,
    on_progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """Classify and featurise every response of ``dataset`` that lacks a row for this
    classifier's fingerprint or for the feature extractor's fingerprint.

    Works ``batch_size`` responses at a time; each batch's classifications, features and
    (with ``run``) progress are written in one transaction, so an interrupted pass keeps
    what it finished and the next pass continues from there. ``classifier`` defaults to
    `refusal_classifier_configured()`. Returns the counts also stored in ``run.counts``:
    ``classes`` (responses per class over the whole dataset for this classifier),
    ``classified`` and ``featurised`` (rows this pass added), ``already_done``,
    ``without_text`` and ``responses``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    classifier = classifier if classifier is not None else refusal_classifier_configured()
    fingerprint = classifier.identity.fingerprint
    extractor = _extractor_for(classifier)
    classified_q = ResponseClassification.objects.filter(
        response=OuterRef("pk"), classifier=fingerprint
    )
    featurised_q = ResponseFeatures.objects.filter(response=OuterRef("pk"), extractor=extractor)

    responses = Response.objects.filter(prompt__dataset=dataset).count()
    with_text = _with_text(dataset)
    eligible = with_text.count()
    pending = list(
        with_text.filter(~Exists(classified_q) | ~Exists(featurised_q))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    classes = _class_counts(dataset, fingerprint)
    counts: dict[str, Any] = {
        "responses": responses,
        "without_text": responses - eligible,
        "already_done": eligible - len(pending),
        "classified": 0,
        "featurised": 0,
        "classes": _all_classes(classes),
        # Which classifier the fingerprint is: the report matches the head against the one
        # its held-out figures belong to (analysis.refusal_instrument).
        "classifier_kind": classifier.identity.kind,
        "classifier_head_sha256": classifier.identity.hashed.get("head_sha256"),
    }
    if run is not None:
        run.classifier, run.extractor = fingerprint, extractor
        run.total, run.done, run.counts = len(pending), 0, dict(counts)
        run.save(update_fields=["classifier", "extractor", "total", "done", "counts", "updated_at"])
        if on_progress is not None:
            on_progress(run)

    ids = iter(pending)
    while chunk := list(islice(ids, batch_size)):
        rows = list(
            Response.objects.filter(pk__in=chunk)
            .annotate(has_class=Exists(classified_q), has_features=Exists(featurised_q))
            .order_by("pk")
            .values_list("pk", "text", "prompt__text", "has_class", "has_features")
        )
        # Another run may have filled some in since the list was read: skip what is complete.
        rows = [row for row in rows if not (row[3] and row[4])]
        analysed = (
            analyse_responses(
                [prompt if prompt and prompt.strip() else None for _, _, prompt, _, _ in rows],
                [text for _, text, _, _, _ in rows],
                classifier=classifier,
            )
            if rows
            else []
        )
        new_classes: list[ResponseClassification] = []
        new_features: list[ResponseFeatures] = []
        for (pk, _, _, has_class, has_features), result in zip(rows, analysed, strict=True):
            if not has_class:
                c = result.classification
                new_classes.append(
                    ResponseClassification(
                        response_id=pk,
                        classifier=fingerprint,
                        label=c.label,
                        score=min(max(c.score, 0.0), 1.0),  # a sum of floats may pass 1 by 1e-16
                        scores=c.scores,
                        refusal_probability=c.refusal_probability,
                        uncertain=c.uncertain,
                    )
                )
                classes[c.label] += 1
            if not has_features:
                # The extractor's dataclass has the model's feature fields, one for one.
                features = asdict(result.features)
                new_features.append(
                    ResponseFeatures(response_id=pk, extractor=extractor, **features)
                )
        counts["classified"] += len(new_classes)
        counts["featurised"] += len(new_features)
        counts["classes"] = _all_classes(classes)
        with transaction.atomic():
            ResponseClassification.objects.bulk_create(new_classes, ignore_conflicts=True)
            ResponseFeatures.objects.bulk_create(new_features, ignore_conflicts=True)
            if run is not None:
                run.done = min(run.done + len(chunk), run.total)
                run.counts = dict(counts)
                run.save(update_fields=["done", "counts", "updated_at"])
        if run is not None and on_progress is not None:
            on_progress(run)

    if counts["classified"]:
        # Exact figures from the table: a racing run may have inserted some of the same rows.
        counts["classes"] = _all_classes(_class_counts(dataset, fingerprint))
        if run is not None:
            run.counts = dict(counts)
            run.save(update_fields=["counts", "updated_at"])
    return {"classifier": fingerprint, "extractor": extractor, **counts}


# --- runs --------------------------------------------------------------------------------------


def classification_run_create(
    *, dataset: Dataset, created_by: Any = None
) -> tuple[ClassificationRun, bool]:
    """A pending run over ``dataset``, or the run already classifying it: (run, created).

    An active run with no progress for `STALE_AFTER` is marked failed and replaced. Raises
    `RefusalClassifierConfigError` for unusable classifier settings and `ValidationError`
    when the dataset has no response texts.
    """
    refusal_classifier_check()
    if not _with_text(dataset).exists():
        raise ValidationError({"dataset": f"dataset {dataset} has no response texts to classify"})
    with transaction.atomic():
        # The dataset row serialises concurrent starts (PostgreSQL; SQLite serialises writes).
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        now = timezone.now()
        active = list(ClassificationRun.objects.filter(dataset=dataset, status__in=ACTIVE))
        live = [run for run in active if not _run_lost(run, now)]
        if live:
            return live[0], False
        run = ClassificationRun.objects.create(dataset=dataset, created_by=created_by)
        for old in active:
            minutes = int(STALE_AFTER.total_seconds() // 60)
            reason = (
                WORKER_LOST
                if old.status == ClassificationRun.Status.RUNNING
                else (f"not started within {minutes} minutes")
            )
            _run_end(old, ClassificationRun.Status.FAILED, f"{reason}; replaced by run {run.pk}")
        return run, True


def _run_lost(run: ClassificationRun, now: datetime) -> bool:
    """An active run that will not finish: running with an expired lease (config.leases),
    or pending and never started for `STALE_AFTER`."""
    if run.status == ClassificationRun.Status.RUNNING:
        return lease_expired(heartbeat_at=run.heartbeat_at, owner=run.lease_owner, now=now)
    return run.status == ClassificationRun.Status.PENDING and now - run.updated_at >= STALE_AFTER


def _run_end(run: ClassificationRun, status: str, error: str = "") -> None:
    run.status, run.error, run.finished_at = status, error, timezone.now()
    run.save(update_fields=["status", "error", "finished_at", "updated_at"])


def classification_runs_recover() -> list[int]:
    """Finish the running runs whose worker died (the sweep, see config.leases): queued again
    to continue from the rows stored, or failed with the reason after
    `TRIBUNAL_JOB_MAX_ATTEMPTS` lost workers. Returns the ids queued again."""
    queued = []
    now = timezone.now()
    running = ClassificationRun.objects.filter(status=ClassificationRun.Status.RUNNING)
    for pk in running.values_list("pk", flat=True):
        with transaction.atomic():
            run = (
                ClassificationRun.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            )
            if run is None or not _run_lost(run, now):
                continue
            if run.attempts >= max_attempts():
                _run_end(
                    run,
                    ClassificationRun.Status.FAILED,
                    f"{WORKER_LOST}, {run.attempts} times; the rows stored are kept: start it "
                    "again to continue",
                )
                continue
            run.status, run.lease_owner, run.heartbeat_at = (
                ClassificationRun.Status.PENDING,
                "",
                timezone.now(),
            )
            run.save(update_fields=["status", "lease_owner", "heartbeat_at", "updated_at"])
            enqueue("judges.classification_run", run.pk)
            queued.append(run.pk)
            log.warning("classification run %s: %s; queued again", pk, WORKER_LOST)
    return queued


def classification_run_start(
    *, dataset: Dataset, created_by: Any = None
) -> tuple[ClassificationRun, bool]:
    """`classification_run_create`, handing a new run to the `judges.classification_run` task
    once this commits (an existing active run is returned as it is)."""
    with transaction.atomic():
        run, created = classification_run_create(dataset=dataset, created_by=created_by)
        if created:
            enqueue("judges.classification_run", run.pk)
    return run, created


def classification_run_execute(
    run_id: int,
    *,
    classifier: RefusalClassifier | None = None,
    batch_size: int = BATCH_SIZE,
    on_progress: ProgressHook | None = None,
) -> ClassificationRun:
    """Run a classification run to the end; idempotent.

    A finished or failed run is returned as it is; a redelivered running run continues (the
    rows already stored are not computed again). Any error (a bad model directory, a
    database error) marks the run failed with the reason; the batches written before it stay.
    """
    with transaction.atomic():
        run = ClassificationRun.objects.select_for_update().select_related("dataset").get(pk=run_id)
        if not run.active:
            return run
        if run.status == ClassificationRun.Status.RUNNING and not _run_lost(run, timezone.now()):
            return run  # a live worker runs it: this is a second delivery of the task
        owner = lease_take(run, running=ClassificationRun.Status.RUNNING, also_save=["updated_at"])
        if owner is None:
            _run_end(
                run, ClassificationRun.Status.FAILED, f"{WORKER_LOST}, {run.attempts - 1} times"
            )
            return run
    with Heartbeat(ClassificationRun, run.pk, owner):
        try:
            responses_analyse(
                dataset=run.dataset,
                classifier=classifier,
                batch_size=batch_size,
                run=run,
                on_progress=on_progress,
            )
        except RefusalClassifierConfigError as exc:
            run.status = ClassificationRun.Status.FAILED
            run.error = str(exc)[:2000]  # the message names the setting to fix
        except Exception as exc:
            log.exception("classification run %s failed", run.pk)
            run.status = ClassificationRun.Status.FAILED
            run.error = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            run.status = ClassificationRun.Status.DONE
    run.finished_at = timezone.now()
    ClassificationRun.objects.filter(pk=run.pk, lease_owner=owner).update(
        status=run.status, error=run.error, finished_at=run.finished_at, updated_at=run.finished_at
    )
    return run
