"""Two judges (or two versions of one judge) on the same pairs: reads and the comparison.

:func:`judges_compare` reads the dataset's (or audit's) vote table
(:func:`analysis.selectors.dataset_votes` / :func:`~analysis.selectors.audit_votes`), lays
the two judges' verdicts side by side per pair (combined and in each order), the people's
verdict (their majority, the lead's adjudication where there is one) and the slice columns
(category, response class, length bucket from both responses' lengths, and in audits the
stratum), and hands that frame to :func:`analysis.metrics.drift.drift_figures`. It answers
with a typed :class:`analysis.snapshot.Comparison`, which the page, the REST API (its
``as_json()``), ``manage.py judge_compare``, the export manifest and drift gate rules read by
attribute, so they show the same figures. Nothing is stored: the comparison is computed on
request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis import selectors
from analysis.metrics import drift
from analysis.snapshot import Comparison, comparison_parse
from analysis.vote_table import MAJORITY, VoteTable
from annotation.models import Audit
from corpus.models import Dataset, Pair
from judges.core.config import JudgeConfig, JudgeConfigError
from judges.models import Judge

SLICES = ("category", "response_class", "length_bucket", "stratum")
SLICE_NAMES = {
    "category": "Category",
    "response_class": "Response classes",
    "length_bucket": "Length",
    "stratum": "Stratum",
}
PEOPLE = "the people's majority per pair (the lead's adjudication where there is one)"


class JudgeNotFound(LookupError):
    """A judge name or id that names none of the subject's judges (the message lists them)."""


def compare_judges(*, dataset: Dataset | None = None, audit: Audit | None = None) -> list[Judge]:
    """The judges a comparison may pick from: the audit's judges, or every judge with a
    verdict on the dataset's pairs, by name and version."""
    if audit is not None:
        return selectors.audit_judges(audit)
    assert dataset is not None
    return list(
        Judge.objects.filter(verdicts__pair__dataset=dataset).distinct().order_by("name", "version")
    )


def judge_named(judges: Sequence[Judge], text: str, where: str) -> Judge:
    """A judge among ``judges`` as ``gate --judge`` reads it (`selectors.judge_in`)."""
    found = selectors.judge_in(judges, text)
    if found is None:
        raise JudgeNotFound(
            f"{text.strip()!r} is not a judge of {where} "
            f"(judges: {selectors.judges_listed(judges)})"
        )
    return found


def subject_name(*, dataset: Dataset | None = None, audit: Audit | None = None) -> str:
    return (
        f"audit {audit.pk}" if audit is not None else f"dataset {dataset.name if dataset else ''}"
    )


def comparison_frame(table: VoteTable, first: Judge, second: Judge) -> pd.DataFrame:
    """One row per pair of the table: ``first``/``second`` (combined verdicts), their orders
    (``first_ab``...), ``people``, ``prompt`` and the slice columns (``length_bucket`` left
    for the caller)."""
    items = table.items
    frame = pd.DataFrame({"item": items["item"].to_numpy(), "prompt": items["prompt"].to_numpy()})
    for column in ("category", "response_class", "stratum"):
        frame[column] = items[column].to_numpy(dtype=object) if column in items else None
    votes = table.votes
    for name, judge in (("first", first), ("second", second)):
        rater = f"j:{judge.pk}"
        combined = votes[votes["rater"] == rater].set_index("item")["value"]
        orders = table.orders[table.orders["rater"] == rater].set_index("item")
        frame[name] = frame["item"].map(combined)
        frame[f"{name}_ab"] = frame["item"].map(orders["outcome_ab"])
        frame[f"{name}_ba"] = frame["item"].map(orders["outcome_ba"])
    people = votes[votes["rater"] == MAJORITY].set_index("item")["value"]
    frame["people"] = frame["item"].map(people)
    return frame.astype(object).where(frame.notna(), None)


def _lengths(items: pd.Series, dataset_id: int) -> tuple[pd.Series, str]:
    details = selectors.pair_details(Pair.objects.filter(pk__in=list(items)), dataset_id)
    frame = details.frame.set_index("pair_id")
    total = frame["tokens_a"] + frame["tokens_b"]
    return items.map(total), details.length_unit


def _judge_json(judge: Judge) -> dict[str, Any]:
    return {
        "id": judge.pk,
        "name": judge.name,
        "version": judge.version,
        "label": str(judge),
        "model_id": judge.model_id,
        "fingerprint": judge.fingerprint,
    }


# What a lead calls each hashed part of a judge's configuration, for "what changed".
CHANGE_NAMES = {
    "reference_field": "the reference answer",
    "template_name": "the template",
    "template_system": "the template",
    "template_user": "the template",
    "rubric": "the rubric",
    "model_id": "the model",
    "model_revision": "the model",
    "provider": "the provider",
    "base_url": "the provider",
    "verdict_mode": "the verdict mode",
}


def config_changes(first: Judge, second: Judge) -> dict[str, Any]:
    """Which hashed parts of the two judges' configurations differ: ``fields`` (names, sorted),
    ``what`` (in words, e.g. "the reference answer"), ``only`` (one kind of change, so the flip
    rate is that change's effect on the same pairs); ``fields`` is None when a configuration
    was not recorded (judges imported with their verdicts)."""
    payloads = []
    for judge in (first, second):
        try:
            payloads.append(JudgeConfig.from_dict(judge.config).fingerprint_payload())
        except (JudgeConfigError, TypeError, ValueError, KeyError):
            return {"fields": None, "what": "", "only": False}
    a, b = payloads
    fields = sorted(name for name in set(a) | set(b) if a.get(name) != b.get(name))
    names = list(dict.fromkeys(CHANGE_NAMES.get(name, name.replace("_", " ")) for name in fields))
    return {"fields": fields, "what": " and ".join(names), "only": len(names) == 1}


def change_sentence(data: Comparison) -> str:
    """What changed between the two judges, in one sentence with the flip rate when a single
    kind of change is all that differs ("The reference answer changed 14.0% of verdicts ...");
    empty when a configuration was not recorded."""
    changes = data.changes
    if not changes.fields:
        return ""
    flip = data.figures.flip_rate
    fields = ", ".join(changes.fields)
    if not changes.only or flip.value is None:
        return f"What changed: {changes.what} ({fields}); the flip rate is their effects together."
    ci = flip.ci
    interval = f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""
    what = changes.what
    return (
        f"What changed: {what} ({fields}), nothing else that is hashed. {what[0].upper()}"
        f"{what[1:]} changed {100 * flip.value:.1f}%{interval} of verdicts on the same pairs."
    )


def judges_compare(
    *,
    first: Judge,
    second: Judge,
    dataset: Dataset | None = None,
    audit: Audit | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    min_n: int = 20,
) -> Comparison:
    """The drift of ``second`` against the baseline ``first`` on the subject's pairs
    (``subject``, ``first``, ``second``, ``people``, ``length_unit``, ``slice_names`` and the
    figures of :func:`analysis.metrics.drift.drift_figures` under ``figures``): written as
    JSON and read back typed (``.as_json()`` is that JSON)."""
    if first.pk == second.pk:
        raise ValueError("pick two different judges to compare")
    if audit is not None:
        table = selectors.audit_votes(audit)
        dataset_id = audit.dataset_id
    else:
        assert dataset is not None
        table = selectors.dataset_votes(dataset)
        dataset_id = dataset.pk
    frame = comparison_frame(table, first, second)
    lengths, unit = _lengths(frame["item"], dataset_id)
    frame["length_bucket"] = drift.length_buckets(lengths.to_numpy(dtype=float))
    slices = [c for c in SLICES if pd.Series(frame[c]).dropna().nunique() >= 2]
    people = frame.pop("people")
    if people.notna().any():  # without labels, no agreement figures (rather than undefined)
        frame["people"] = people
    figures = drift.drift_figures(
        frame, slices=slices, n_boot=n_boot, seed=seed, alpha=alpha, min_n=min_n
    )
    both = frame["first"].notna() & frame["second"].notna()
    labelled = both & people.notna()
    return comparison_parse(
        {
            "subject": table.subject,
            "first": _judge_json(first),
            "second": _judge_json(second),
            "people": PEOPLE,
            "pairs": len(frame),
            "pairs_compared": int(both.sum()),
            "pairs_labelled": int(labelled.sum()),
            "length_unit": unit,
            "length_cuts": _cuts(lengths),
            "slice_names": {c: SLICE_NAMES[c] for c in slices},
            "changes": config_changes(first, second),
            "figures": figures,
        }
    )


def _cuts(lengths: pd.Series) -> list[float]:
    known = pd.to_numeric(lengths, errors="coerce").dropna()
    if known.empty:
        return []
    cuts = np.unique(np.quantile(known, np.linspace(0, 1, len(drift.LENGTH_BUCKETS) + 1)[1:-1]))
    return [float(c) for c in cuts]
