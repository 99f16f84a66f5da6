"""Reads for judges: versions with their verdict statistics, runs, the pairs a run covers,
and the refusal classes of a dataset's responses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet

from corpus import selectors as corpus_selectors
from corpus.models import Dataset, Pair, Response
from judges.charts import ClassChart, class_chart
from judges.core.families import family_of
from judges.models import (
    ClassificationRun,
    Judge,
    JudgeFamily,
    JudgeRun,
    ModelFamily,
    ParseStatus,
    ResponseClass,
    ResponseClassification,
    Verdict,
)


class JudgeNotFound(LookupError):
    """A ``NAME[:VERSION]`` that names no judge version; the message says what exists."""


def judge_by_spec(spec: str) -> Judge:
    """``NAME`` (the latest version) or ``NAME:VERSION``.

    An exact name wins, so an imported judge whose name holds a colon is still found.
    """
    spec = spec.strip()
    name, sep, version_text = spec.rpartition(":")
    if not sep or Judge.objects.filter(name=spec).exists():
        name, version_text = spec, ""
    versions = list(
        Judge.objects.filter(name=name).order_by("-version").values_list("version", flat=True)
    )
    if not versions:
        raise JudgeNotFound(f"no judge named {name!r}")
    if not version_text:
        return Judge.objects.get(name=name, version=versions[0])
    if not version_text.isdigit():
        raise JudgeNotFound(f"{spec!r}: the version after ':' must be a number")
    version = int(version_text)
    if version not in versions:
        listed = ", ".join(str(v) for v in sorted(versions))
        raise JudgeNotFound(f"{name} has version(s) {listed}; no version {version}")
    return Judge.objects.get(name=name, version=version)


def judge_run_pair_ids(*, dataset: Dataset, pair_ids: Sequence[int] | None = None) -> list[int]:
    """Ids of the pairs a run judges, in run order: the dataset's pairs in import order, or
    those of ``pair_ids`` that belong to the dataset, in the order given. Pairs without a
    prompt text or a response text (verdict-only imports) cannot be judged and are left out."""
    judgeable = Pair.objects.filter(
        Q(prompt__text__gt="") & Q(response_a__has_text=True) & Q(response_b__has_text=True),
        dataset=dataset,
    )
    if pair_ids is None:
        return list(judgeable.order_by("pk").values_list("pk", flat=True))
    wanted = list(dict.fromkeys(pair_ids))
    found: set[int] = set()
    for start in range(0, len(wanted), 5000):  # SQLite allows 32,766 parameters per query
        batch = wanted[start : start + 5000]
        found.update(judgeable.filter(pk__in=batch).values_list("pk", flat=True))
    return [pk for pk in wanted if pk in found]


@dataclass(frozen=True)
class JudgeStats:
    """Verdict counts of one judge version. Orders count each presentation order once."""

    judge: Judge
    verdicts: int
    orders_ok: int
    orders_failed: int
    orders_error: int
    inconsistent: int

    @property
    def orders_answered(self) -> int:
        return self.orders_ok + self.orders_failed

    @property
    def failed_parse_rate(self) -> float | None:
        """Failed parses among answered orders (calls that errored are not answers)."""
        return self.orders_failed / self.orders_answered if self.orders_answered else None


def _stats_queryset() -> QuerySet[Judge]:
    def count(order: str, status: str) -> Count:
        return Count("verdicts", filter=Q(**{f"verdicts__status_{order}": status}))

    return Judge.objects.annotate(
        n_verdicts=Count("verdicts"),
        ok_ab=count("ab", ParseStatus.OK),
        ok_ba=count("ba", ParseStatus.OK),
        failed_ab=count("ab", ParseStatus.FAILED),
        failed_ba=count("ba", ParseStatus.FAILED),
        error_ab=count("ab", ParseStatus.ERROR),
        error_ba=count("ba", ParseStatus.ERROR),
        n_inconsistent=Count("verdicts", filter=Q(verdicts__consistent=False)),
    )


_ANNOTATIONS = (
    "n_verdicts",
    "ok_ab",
    "ok_ba",
    "failed_ab",
    "failed_ba",
    "error_ab",
    "error_ba",
    "n_inconsistent",
)


def _stats(judge: Judge) -> JudgeStats:
    a = {name: int(getattr(judge, name)) for name in _ANNOTATIONS}
    return JudgeStats(
        judge=judge,
        verdicts=a["n_verdicts"],
        orders_ok=a["ok_ab"] + a["ok_ba"],
        orders_failed=a["failed_ab"] + a["failed_ba"],
        orders_error=a["error_ab"] + a["error_ba"],
        inconsistent=a["n_inconsistent"],
    )


def judge_list_with_stats() -> list[JudgeStats]:
    return [_stats(j) for j in _stats_queryset().order_by("name", "-version")]


def judge_stats(judge: Judge) -> JudgeStats:
    return _stats(_stats_queryset().get(pk=judge.pk))


@dataclass(frozen=True)
class JudgeCard:
    """A judge version as another page shows it: its verdict counts and its latest runs over
    one scope of pairs (e.g. "audit 3")."""

    stats: JudgeStats
    runs: list[JudgeRun]


def judge_cards(judges: Sequence[Judge], *, scope: str = "", runs: int = 3) -> list[JudgeCard]:
    """Cards of `judges`, in the order given; `runs` latest runs each whose scope is `scope`."""
    stats = {j.pk: _stats(j) for j in _stats_queryset().filter(pk__in=[j.pk for j in judges])}
    latest = JudgeRun.objects.select_related("judge", "dataset", "created_by").order_by(
        "-created_at", "-pk"
    )
    return [
        JudgeCard(stats[j.pk], list(latest.filter(judge=j, scope=scope)[:runs]))
        for j in judges
        if j.pk in stats
    ]


@dataclass(frozen=True)
class FailedOrder:
    """One order of one pair that has no parsed verdict: what the judge said, and why."""

    pair: Pair
    order: str
    status: str
    reason: str
    raw: str


def judge_failed_orders(judge: Judge, *, limit: int = 20) -> list[FailedOrder]:
    """Orders with a failed parse or a failed call, most recently written first."""
    failing = [ParseStatus.FAILED, ParseStatus.ERROR]
    verdicts = (
        Verdict.objects.filter(judge=judge)
        .filter(Q(status_ab__in=failing) | Q(status_ba__in=failing))
        .select_related("pair", "pair__dataset")
        .order_by("-updated_at", "-pk")[:limit]
    )
    rows: list[FailedOrder] = []
    for verdict in verdicts:
        for order in ("ab", "ba"):
            status = getattr(verdict, f"status_{order}")
            if status not in failing:
                continue
            detail = verdict.order_details.get(order) or {}
            parsed = detail.get("verdict") or {}
            reason = parsed.get("reason") or detail.get("error") or ""
            raw = getattr(verdict, f"raw_{order}")
            rows.append(FailedOrder(verdict.pair, order, status, reason, raw))
    return rows[:limit]


def judge_runs(*, judge: Judge | None = None, limit: int = 20) -> QuerySet[JudgeRun]:
    runs = JudgeRun.objects.select_related("judge", "dataset", "created_by")
    if judge is not None:
        runs = runs.filter(judge=judge)
    return runs.order_by("-created_at")[:limit]


def runnable_judges() -> QuerySet[Judge]:
    return Judge.objects.exclude(provider=Judge.Provider.IMPORTED).order_by("name", "-version")


# --- refusal classes ---------------------------------------------------------------------------


def class_chart_of(counts: dict[str, int]) -> ClassChart:
    """The per-class bar chart of ``counts`` (class -> responses), every class shown."""
    return class_chart(counts, classes=ResponseClass.values, names=dict(ResponseClass.choices))


@dataclass(frozen=True)
class DatasetClasses:
    """The refusal classes of a dataset's responses under one classifier."""

    classifier: str  # fingerprint
    counts: dict[str, int]
    responses: int  # responses of the dataset, with text or not
    without_text: int = 0  # empty responses: never classified

    @property
    def classified(self) -> int:
        return sum(self.counts.values())

    @property
    def unclassified(self) -> int:
        return max(0, self.responses - self.classified)

    @property
    def unclassified_with_text(self) -> int:
        return max(0, self.unclassified - self.without_text)

    @property
    def chart(self) -> ClassChart:
        return class_chart_of(self.counts)


def dataset_classes(dataset: Dataset) -> DatasetClasses | None:
    """Responses per class from the most recently used classifier on this dataset (the same
    classifier the reports read), or None when nothing is classified yet."""
    found = ResponseClassification.objects.filter(response__prompt__dataset=dataset)
    classifier = found.order_by("-created_at", "-pk").values_list("classifier", flat=True).first()
    if classifier is None:
        return None
    rows = (
        found.filter(classifier=classifier)
        .values("label")
        .annotate(n=Count("pk"))
        .values_list("label", "n")
    )
    counts = dict.fromkeys(ResponseClass.values, 0)
    counts.update(dict(rows))
    responses = Response.objects.filter(prompt__dataset=dataset).aggregate(
        n=Count("pk"), empty=Count("pk", filter=Q(has_text=False))
    )
    return DatasetClasses(
        classifier=classifier,
        counts=counts,
        responses=responses["n"],
        without_text=responses["empty"],
    )


def classification_run_latest(dataset: Dataset) -> ClassificationRun | None:
    return ClassificationRun.objects.filter(dataset=dataset).order_by("-created_at", "-pk").first()


# --- datasets as the judges see them ----------------------------------------------------------


def datasets_with_verdict_counts() -> QuerySet[Dataset]:
    """Datasets with `pair_count`, `vote_count` and `verdict_count` (judge verdicts)."""
    return corpus_selectors.datasets_with_counts().annotate(
        verdict_count=corpus_selectors.count_of(Verdict, "pair__dataset")
    )


def dataset_judges(dataset: Dataset) -> list[dict[str, Any]]:
    """The judge versions with verdicts on this dataset, with how many."""
    rows = (
        Verdict.objects.filter(pair__dataset=dataset)
        .order_by()
        .values("judge_id", "judge__name", "judge__version", "judge__fingerprint")
        .annotate(n=Count("pk"))
        .order_by("judge__name", "-judge__version")
    )
    return [
        {
            "id": row["judge_id"],
            "name": row["judge__name"],
            "version": row["judge__version"],
            "fingerprint": row["judge__fingerprint"],
            "verdicts": row["n"],
        }
        for row in rows
    ]


def dataset_verdict_count(dataset: Dataset) -> int:
    return Verdict.objects.filter(pair__dataset=dataset).count()


# --- model families (self-family preference) ---------------------------------------------------


@dataclass(frozen=True)
class FamilyRow:
    """One model name's or judge's family: the one in force, the default read from the name,
    and whether a lead set it (``source`` "lead") or it is the default ("default"; None when
    no rule knows the name and no lead named it)."""

    key: str
    family: str | None
    default: str | None
    source: str | None


def model_families(names: Sequence[str]) -> dict[str, FamilyRow]:
    """The family of each model name: a lead's `ModelFamily`, else the default."""
    overrides = dict(
        ModelFamily.objects.filter(model_name__in=list(names)).values_list("model_name", "family")
    )
    out = {}
    for name in names:
        default = family_of(name)
        chosen = overrides.get(name)
        source = "lead" if chosen else ("default" if default else None)
        out[name] = FamilyRow(name, chosen or default, default, source)
    return out


def judge_families(judges: Sequence[Judge]) -> dict[int, FamilyRow]:
    """The family of each judge version: a lead's `JudgeFamily`, else its model id's family
    (a lead's `ModelFamily` for that id, else the default from the id, else from the name)."""
    overrides = dict(
        JudgeFamily.objects.filter(judge__in=[j.pk for j in judges]).values_list(
            "judge_id", "family"
        )
    )
    by_model = model_families([j.model_id for j in judges])
    out = {}
    for judge in judges:
        row = by_model[judge.model_id]
        default = row.family or family_of(judge.name)
        chosen = overrides.get(judge.pk)
        source = "lead" if chosen else ("default" if default else None)
        out[judge.pk] = FamilyRow(str(judge), chosen or default, default, source)
    return out


def dataset_families(dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    """The dataset's model names (with their numbers of responses) and the judges with
    verdicts on it, each with its family; for the families page and the API."""
    models = corpus_selectors.dataset_models(dataset)
    families = model_families([row["model"] for row in models if row["model"]])
    judges = {j.pk: j for j in Judge.objects.filter(verdicts__pair__dataset=dataset).distinct()}
    by_judge = judge_families(list(judges.values()))
    return {
        "models": [
            {
                "model": row["model"],
                "responses": row["responses"],
                **_family_json(families[row["model"]]),
            }
            for row in models
            if row["model"]
        ],
        "judges": [
            {
                "id": pk,
                "name": judges[pk].name,
                "version": judges[pk].version,
                "model_id": judges[pk].model_id,
                **_family_json(row),
            }
            for pk, row in sorted(by_judge.items(), key=lambda item: item[1].key)
        ],
    }


def _family_json(row: FamilyRow) -> dict[str, Any]:
    return {"family": row.family, "default": row.default, "source": row.source}
