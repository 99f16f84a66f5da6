"""Flags for training pipelines: the pairs whose judge verdict should not be used without a person.

A pipeline that filters or weights its data by an LLM judge's verdicts joins this file on the
pair's source key and sends the flagged pairs to people (or drops them). A pair is flagged for
any of these reasons, all listed:

- `ethics_refusal`: either response is classed an ethical refusal (the dataset's most recent
  classifier), where judges and people part most (docs/refusal-hh-rlhf.md);
- `swap_inconsistent`: a judge's verdict flips when the two responses swap places;
- `low_margin`: a judge's margin is below the threshold (given, or the latest audit's of the
  dataset; without one this reason is not checked, and the manifest says so);
- `judges_disagree`: two judge versions give different combined verdicts.

A shifted slice (drift between the audited data and new data) is not checked: Tribunal has
no drift detection yet; the manifest says so rather than implying the slice is fine.

Each row carries the human label where one exists: an audit's adjudication, else the audit's
labels' majority (the latest audit that holds the pair), else the imported votes' majority.
Rows are one plain value per cell (lists of strings for the judges behind a reason), in
JSON lines or Parquet, with a manifest of the counts and the rules used.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.utils import timezone

from analysis.export import ExportError, _Hashing, consensus, tribunal_version
from analysis.selectors import latest_classifier
from annotation.models import Audit
from annotation.selectors import final_outcomes
from corpus.models import Dataset, HumanVote, Pair
from judges.models import Judge, ResponseClass, ResponseClassification, Verdict

FORMATS = ("jsonl", "parquet")
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}
REASONS: tuple[str, ...] = ("ethics_refusal", "swap_inconsistent", "low_margin", "judges_disagree")
NOT_CHECKED = {
    "shifted_slice": "not checked: Tribunal has no drift detection yet",
}
SCHEMA: tuple[tuple[str, str], ...] = (
    ("source_key", "string"),
    ("dataset", "string"),
    ("reasons", "list"),
    *((reason, "bool") for reason in REASONS),
    ("class_a", "string"),
    ("class_b", "string"),
    ("inconsistent_judges", "list"),
    ("low_margin_judges", "list"),
    ("judge_verdicts", "list"),
    ("human_label", "string"),
    ("human_label_source", "string"),
)


@dataclass
class FlagRules:
    dataset: Dataset
    judges: list[Judge]
    margin: float | None
    margin_source: str
    classifier: str | None
    counts: Counter[str] = field(default_factory=Counter)
    pairs: int = 0


def flag_rules(
    dataset: Dataset, *, judge_ids: Sequence[int] | None = None, margin: float | None = None
) -> FlagRules:
    """The rules of one flags export; an unknown judge or a negative margin is an ExportError."""
    with_verdicts = Judge.objects.filter(verdicts__pair__dataset=dataset).distinct()
    if judge_ids:
        judges = list(with_verdicts.filter(pk__in=judge_ids).order_by("name", "version"))
        missing = sorted(set(judge_ids) - {j.pk for j in judges})
        if missing:
            raise ExportError(
                f"judge: no verdicts on {dataset.name} from judge id "
                f"{', '.join(str(pk) for pk in missing)}"
            )
    else:
        judges = list(with_verdicts.order_by("name", "version"))
    source = "given"
    if margin is None:
        latest = Audit.objects.filter(dataset=dataset).order_by("-created_at", "-pk")
        for audit in latest:
            threshold = ((audit.selection or {}).get("thresholds") or {}).get("margin")
            if threshold is not None:
                margin, source = float(threshold), f"audit {audit.pk}'s selection"
                break
        else:
            source = "none: give a margin threshold to check low margins"
    elif margin < 0:
        raise ExportError("margin: must not be negative")
    return FlagRules(dataset, judges, margin, source, latest_classifier(dataset.pk))


def _human_labels(dataset: Dataset) -> dict[int, tuple[str, str]]:
    """pair id -> (label, source): audits first (the latest holding the pair), then votes."""
    labels: dict[int, tuple[str, str]] = {}
    votes: dict[int, list[str]] = defaultdict(list)
    for pair_id, vote in (
        HumanVote.objects.filter(pair__dataset=dataset)
        .values_list("pair_id", "outcome")
        .iterator(chunk_size=10_000)
    ):
        votes[pair_id].append(vote)
    for pair_id, outcomes in votes.items():
        agreed = consensus(outcomes)
        if agreed:
            labels[pair_id] = (agreed, "imported votes")
    for audit in Audit.objects.filter(dataset=dataset).order_by("created_at", "pk"):
        finals = final_outcomes(audit)
        pair_of = dict(audit.items.values_list("pk", "pair_id"))
        for item_id, (final, source) in finals.items():
            if final:
                where = "adjudication" if source == "adjudication" else "audit labels"
                labels[pair_of[item_id]] = (final, f"{where} (audit {audit.pk})")
    return labels


def flag_rows(rules: FlagRules) -> Iterator[dict[str, Any]]:
    """The flagged pairs of the dataset, in source-key order; counts go into ``rules``."""
    dataset = rules.dataset
    judge_label = {j.pk: f"{j.name} v{j.version}" for j in rules.judges}
    calls: dict[int, list[tuple[str, str | None, bool | None, float | None]]] = defaultdict(list)
    for pair_id, judge_id, outcome, consistent, margin in (
        Verdict.objects.filter(pair__dataset=dataset, judge_id__in=list(judge_label))
        .order_by("judge__name", "judge__version")
        .values_list("pair_id", "judge_id", "outcome", "consistent", "margin")
        .iterator(chunk_size=10_000)
    ):
        calls[pair_id].append((judge_label[judge_id], outcome or None, consistent, margin))
    classes: dict[int, str] = {}
    if rules.classifier:
        classes = dict(
            ResponseClassification.objects.filter(
                response__prompt__dataset=dataset, classifier=rules.classifier
            )
            .values_list("response_id", "label")
            .iterator(chunk_size=10_000)
        )
    humans = _human_labels(dataset)
    pairs = (
        Pair.objects.filter(dataset=dataset)
        .order_by("source_key")
        .values_list("pk", "source_key", "response_a_id", "response_b_id")
    )
    for pk, source_key, response_a, response_b in pairs.iterator(chunk_size=10_000):
        rules.pairs += 1
        class_a, class_b = classes.get(response_a), classes.get(response_b)
        judged = calls.get(pk, [])
        inconsistent = [name for name, _, consistent, _ in judged if consistent is False]
        close = [
            name
            for name, _, _, margin in judged
            if rules.margin is not None and margin is not None and abs(margin) < rules.margin
        ]
        outcomes = {outcome for _, outcome, _, _ in judged if outcome}
        flags = {
            "ethics_refusal": ResponseClass.ETHICAL_REFUSAL in (class_a, class_b),
            "swap_inconsistent": bool(inconsistent),
            "low_margin": bool(close),
            "judges_disagree": len(outcomes) > 1,
        }
        reasons = [reason for reason in REASONS if flags[reason]]
        if not reasons:
            continue
        rules.counts.update(reasons)
        rules.counts["flagged"] += 1
        human = humans.get(pk)
        yield {
            "source_key": source_key,
            "dataset": dataset.name,
            "reasons": reasons,
            **flags,
            "class_a": class_a,
            "class_b": class_b,
            "inconsistent_judges": inconsistent,
            "low_margin_judges": close,
            "judge_verdicts": [
                f"{name}: {outcome or 'unparsed'}" for name, outcome, _, _ in judged
            ],
            "human_label": human[0] if human else None,
            "human_label_source": human[1] if human else None,
        }


def _write_jsonl(rows: Iterator[dict[str, Any]], out: IO[bytes]) -> None:
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")


def _write_parquet(rows: Iterator[dict[str, Any]], out: IO[bytes]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = {"string": pa.string(), "bool": pa.bool_(), "list": pa.list_(pa.string())}
    schema = pa.schema([(name, kinds[kind]) for name, kind in SCHEMA])
    columns: dict[str, list[Any]] = {name: [] for name, _ in SCHEMA}
    for row in rows:
        for name, values in columns.items():
            values.append(row[name])
    pq.write_table(pa.table(columns, schema=schema), out, compression="zstd")


def manifest(rules: FlagRules, fmt: str, *, sha256: str, size: int, name: str) -> dict[str, Any]:
    return {
        "kind": "tribunal-training-flags",
        "tribunal_version": tribunal_version(),
        "created_at": timezone.now().isoformat(),
        "format": fmt,
        "file": name,
        "sha256": sha256,
        "bytes": size,
        "dataset": rules.dataset.name,
        "key": "source_key: the pair's key in the imported file (join on it)",
        "pairs": rules.pairs,
        "flagged": rules.counts["flagged"],
        "reasons": {reason: rules.counts[reason] for reason in REASONS},
        "rules": {
            "ethics_refusal": f"either response classed ethical_refusal by {rules.classifier}"
            if rules.classifier
            else "not checked: no response of this dataset is classified",
            "swap_inconsistent": "a judge's verdict flips when the sides swap",
            "low_margin": f"|margin| < {rules.margin} ({rules.margin_source})"
            if rules.margin is not None
            else f"not checked ({rules.margin_source})",
            "judges_disagree": "two judge versions give different combined verdicts",
            **NOT_CHECKED,
        },
        "judges": [
            {"id": j.pk, "name": j.name, "version": j.version, "fingerprint": j.fingerprint}
            for j in rules.judges
        ],
        "human_label": "an audit's adjudication, else its labels' majority (the latest audit "
        "holding the pair), else the imported votes' majority; empty when none",
    }


def flags_to_stream(
    rules: FlagRules, *, fmt: str, out: IO[bytes], name: str = ""
) -> dict[str, Any]:
    """Write the flags to ``out`` and return the manifest."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    sink: Any = _Hashing(out)
    (_write_parquet if fmt == "parquet" else _write_jsonl)(flag_rows(rules), sink)
    return manifest(
        rules,
        fmt,
        sha256=sink.sha256.hexdigest(),
        size=sink.size,
        name=name or f"{rules.dataset.name}-flags.{fmt}",
    )


def flags_to_file(rules: FlagRules, *, fmt: str, path: Path | str) -> dict[str, Any]:
    """Write the flags to ``path`` and the manifest to ``<path>.manifest.json``."""
    path = Path(path)
    with open(path, "wb") as handle:
        result = flags_to_stream(rules, fmt=fmt, out=handle, name=path.name)
    path.with_name(path.name + ".manifest.json").write_text(
        json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    )
    return result
