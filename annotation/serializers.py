"""Small input and output serializers, one pair per API action. No logic: services decide."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import serializers

from annotation import sampling
from annotation.models import Adjudication, Assignment, Audit
from annotation.queue import CHOICES, CRITERION_CHOICES, to_side
from corpus.models import Outcome
from corpus.serializers import PairOutput
from judges.models import ResponseClass

ID_MAX = 2**63 - 1  # a BigAutoField; larger numbers crash SQLite's `IN (...)` lookups


def _id_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=ID_MAX, **kwargs)


def _choice(choices: Any, name: str) -> serializers.ChoiceField:
    values = [value for value, _ in choices]
    return serializers.ChoiceField(
        choices=choices,
        required=False,
        allow_blank=True,
        error_messages={
            "invalid_choice": f'"{{input}}" is not a {name}; use {" or ".join(values)}'
        },
    )


class AuditFilterInput(serializers.Serializer):
    status = _choice(Audit.Status.choices, "status")
    dataset = serializers.SlugField(required=False, allow_blank=True, help_text="dataset name")


class AuditCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    dataset = serializers.SlugField()
    judges = serializers.ListField(child=_id_field(), required=False, default=list)
    size = serializers.IntegerField(min_value=1, max_value=100_000)
    overlap_k = serializers.IntegerField(min_value=1, max_value=20, default=2)
    quotas = serializers.DictField(
        child=serializers.IntegerField(min_value=0, allow_null=True), required=False, default=dict
    )
    thresholds = serializers.DictField(required=False, default=dict)
    seed = serializers.IntegerField(min_value=0, max_value=2**62, required=False)
    annotators = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, default=list
    )
    guidelines = serializers.CharField(required=False, allow_blank=True, default="")
    allow_both_bad = serializers.BooleanField(required=False, default=False)
    allow_strength = serializers.BooleanField(required=False, default=False)
    criteria = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, default=list
    )
    hold_seconds = serializers.IntegerField(min_value=10, required=False)
    classifier = serializers.CharField(max_length=64, required=False, allow_blank=True)
    queue_policy = serializers.ChoiceField(
        choices=Audit.QueuePolicy.choices, default=Audit.QueuePolicy.COMPLETE_FIRST
    )
    blind_adjudication = serializers.BooleanField(required=False, default=False)
    ask_response_classes = serializers.BooleanField(required=False, default=False)
    drift_judges = serializers.ListField(
        child=_id_field(),
        required=False,
        default=list,
        help_text="[before, after]: two judge versions; the drift stratum holds the pairs "
        "whose verdict differs between them",
    )

    def validate_quotas(self, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(sampling.ALL_STRATA))
        if unknown:
            raise serializers.ValidationError(
                f"unknown stratum {unknown[0]!r}; use {', '.join(sampling.ALL_STRATA)}"
            )
        return value


class AvailabilityInput(serializers.Serializer):
    dataset = serializers.SlugField()
    judges = serializers.ListField(child=_id_field(), required=False, default=list)
    margin = serializers.FloatField(min_value=0, required=False, allow_null=True, default=None)
    classifier = serializers.CharField(max_length=64, required=False, allow_blank=True)


class AuditOutput(serializers.ModelSerializer):
    """An audit. `judges`, `selection` and `seed` describe the instruments and the sampling
    design: leads get them, annotators get null (the pages do not show them either)."""

    dataset = serializers.SlugRelatedField(slug_field="name", read_only=True)
    judges = serializers.SerializerMethodField()
    selection = serializers.SerializerMethodField()
    seed = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Audit
        fields = [
            "id",
            "name",
            "dataset",
            "judges",
            "status",
            "target_size",
            "overlap_k",
            "allow_both_bad",
            "allow_strength",
            "criteria",
            "guidelines",
            "seed",
            "selection",
            "hold_seconds",
            "queue_policy",
            "blind_adjudication",
            "ask_response_classes",
            "gold_percent",
            "created_at",
            "progress",
        ]

    def _for_lead(self) -> bool:
        return bool(self.context.get("lead", False))

    def get_judges(self, audit: Audit) -> list[int] | None:
        if not self._for_lead():
            return None
        return sorted(judge.pk for judge in audit.judges.all())

    def get_selection(self, audit: Audit) -> dict[str, Any] | None:
        return audit.selection if self._for_lead() else None

    def get_seed(self, audit: Audit) -> int | None:
        return audit.seed if self._for_lead() else None

    def get_progress(self, audit: Audit) -> dict[str, int]:
        progress = self.context["progress"](audit)
        return {
            "items": progress.items,
            "labels_done": progress.labels_done,
            "labels_needed": progress.labels_needed,
            "items_complete": progress.items_complete,
            "mine": progress.mine,
            "left_for_me": progress.left_for_me,
        }


class AuditOptionsInput(serializers.Serializer):
    queue_policy = serializers.ChoiceField(choices=Audit.QueuePolicy.choices, required=False)
    blind_adjudication = serializers.BooleanField(required=False)
    ask_response_classes = serializers.BooleanField(required=False)
    gold_percent = serializers.IntegerField(min_value=0, max_value=50, required=False)
    qc_min_seconds = serializers.FloatField(min_value=0, max_value=3600, required=False)
    qc_min_gold_accuracy = serializers.FloatField(min_value=0, max_value=1, required=False)


class GrowInput(serializers.Serializer):
    n = serializers.IntegerField(min_value=1, max_value=100_000, help_text="items to add")


class GrowOutput(serializers.Serializer):
    added = serializers.DictField(child=serializers.IntegerField(), help_text="per stratum")
    audit = serializers.DictField()


class OverlapInput(serializers.Serializer):
    overlap_k = serializers.IntegerField(min_value=1, max_value=20)


class CapacityInput(serializers.Serializer):
    labels = serializers.IntegerField(
        min_value=0, required=False, help_text="more labels wanted: says what gets there"
    )


class ReachOutput(serializers.Serializer):
    labels = serializers.IntegerField()
    fits = serializers.BooleanField()
    reachable = serializers.BooleanField()
    add_items = serializers.IntegerField(allow_null=True)
    raise_k = serializers.IntegerField(allow_null=True)
    sentence = serializers.CharField()


class CapacityOutput(serializers.Serializer):
    items = serializers.IntegerField()
    overlap_k = serializers.IntegerField()
    annotators = serializers.IntegerField()
    labels_done = serializers.IntegerField()
    labels_possible = serializers.IntegerField()
    labels_left = serializers.IntegerField()
    pairs_left = serializers.IntegerField()
    most_labels = serializers.IntegerField()


class ProportionOutput(serializers.Serializer):
    successes = serializers.IntegerField()
    n = serializers.IntegerField()
    share = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()


class QualityOutput(serializers.Serializer):
    annotator = serializers.CharField(source="user.get_username")
    listed = serializers.BooleanField()
    labels = serializers.IntegerField()
    skips = serializers.IntegerField()
    holding = serializers.IntegerField()
    median_seconds = serializers.FloatField(source="figures.median_seconds", allow_null=True)
    gold = ProportionOutput(source="figures.gold", allow_null=True)
    agreement = ProportionOutput(source="figures.agreement", allow_null=True)
    left = ProportionOutput(source="figures.left", allow_null=True)
    flags = serializers.ListField(child=serializers.CharField(), source="figures.flags")
    set_aside = serializers.SerializerMethodField()

    def get_set_aside(self, row: Any) -> bool:
        return row.set_aside is not None


class GoldInput(serializers.Serializer):
    lines = serializers.CharField(
        max_length=100_000,
        help_text='one per line: "source key, answer (A, B, tie, both bad), note"',
    )


class SetAsideInput(serializers.Serializer):
    set_aside = serializers.BooleanField(help_text="true: set aside; false: count again")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class AuditJudgeRunInput(serializers.Serializer):
    judge = _id_field(help_text="the judge version to run")
    limit = serializers.IntegerField(
        min_value=1, required=False, help_text="the first N items in serving order"
    )


class AuditRejudgeInput(serializers.Serializer):
    judge = _id_field(help_text="the new judge version to run on the labelled pairs")


class AuditRejudgeOutput(serializers.Serializer):
    run = serializers.DictField(help_text="the judge run (as /api/judge-runs/{id}/ gives it)")
    pairs = serializers.IntegerField(help_text="the labelled pairs it judges")
    baseline = serializers.DictField(
        allow_null=True, help_text="the earlier version it is compared with (id, name, version)"
    )
    compare_url = serializers.CharField(
        allow_null=True,
        help_text="the comparison with the baseline on this audit: agreement with the people's "
        "labels for both versions, once the run is done",
    )


class AuditStatusInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Audit.Status.choices)


class AuditAnnotatorsInput(serializers.Serializer):
    annotators = serializers.ListField(
        child=serializers.CharField(max_length=150), min_length=1, help_text="user names"
    )


class AssignmentOutput(serializers.Serializer):
    """What an annotator is shown: texts by screen side, never model names or verdicts."""

    id = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    submission_key = serializers.SerializerMethodField()
    prompt = serializers.SerializerMethodField()
    left = serializers.SerializerMethodField()
    right = serializers.SerializerMethodField()

    def get_submission_key(self, assignment: Assignment) -> str:
        return str(uuid.uuid4())

    def get_prompt(self, assignment: Assignment) -> str:
        return assignment.item.pair.prompt.text

    def get_left(self, assignment: Assignment) -> str:
        pair = assignment.item.pair
        return (pair.response_a if assignment.a_on_left else pair.response_b).text

    def get_right(self, assignment: Assignment) -> str:
        pair = assignment.item.pair
        return (pair.response_b if assignment.a_on_left else pair.response_a).text


class LabelInput(serializers.Serializer):
    choice = serializers.ChoiceField(choices=CHOICES)
    submission_key = serializers.UUIDField()
    strength = serializers.ChoiceField(choices=[1, 2], required=False, allow_null=True)
    criteria = serializers.DictField(
        child=serializers.ChoiceField(choices=CRITERION_CHOICES), required=False, default=dict
    )
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    time_spent_ms = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    classes = serializers.DictField(
        child=serializers.ChoiceField(choices=ResponseClass.values),
        required=False,
        default=dict,
        help_text='what each response did, by the side you saw: {"left": "normal", '
        '"right": "ethical_refusal"}; required when the audit asks response classes '
        "(normal, ethical_refusal, technical_refusal, ethical_disclaimer, technical_disclaimer)",
    )


class LabelReviseInput(LabelInput):
    """A new answer for one of your labels: the side you saw, as when you first answered."""

    time_spent_ms = None  # type: ignore[assignment]  # the first answer's time is kept


class LabelOutput(serializers.Serializer):
    """The annotator's own label, in the sides they saw."""

    id = serializers.IntegerField()
    assignment = serializers.IntegerField(source="assignment_id")
    choice = serializers.SerializerMethodField()
    strength = serializers.IntegerField(allow_null=True)
    criteria = serializers.SerializerMethodField()
    rationale = serializers.CharField()
    time_spent_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    classes = serializers.SerializerMethodField()

    def _a_on_left(self, label: Any) -> bool:
        return bool(label.assignment.a_on_left)

    def get_choice(self, label: Any) -> str:
        return to_side(label.outcome, a_on_left=self._a_on_left(label))

    def get_criteria(self, label: Any) -> dict[str, str]:
        return {
            name: to_side(value, a_on_left=self._a_on_left(label))
            for name, value in label.criteria.items()
        }

    def get_classes(self, label: Any) -> dict[str, str]:
        """The response classes given with the label, by the side the annotator saw."""
        left = "A" if self._a_on_left(label) else "B"
        # .all(): a new label's rows are known (annotation.queue), a list's can be prefetched
        return {
            ("left" if row.side == left else "right"): row.response_class
            for row in label.response_classes.all()
        }


# The label call's answer, built without instantiating the serializers above (they stay the
# API's schema): DRF deep-copies a serializer's fields for every instance, which cost about a
# tenth of a web worker's CPU per label in `bench/http_load.py`'s profile. A test checks that
# these give what the serializers give. The datetime field only formats (no instance state).
_DATETIME = serializers.DateTimeField()


def assignment_output(assignment: Assignment) -> dict[str, Any]:
    """:class:`AssignmentOutput`'s data for one assignment."""
    pair = assignment.item.pair
    left, right = (
        (pair.response_a, pair.response_b)
        if assignment.a_on_left
        else (pair.response_b, pair.response_a)
    )
    return {
        "id": assignment.id,
        "expires_at": _DATETIME.to_representation(assignment.expires_at),
        "submission_key": str(uuid.uuid4()),
        "prompt": pair.prompt.text,
        "left": left.text,
        "right": right.text,
    }


def label_output(label: Any) -> dict[str, Any]:
    """:class:`LabelOutput`'s data for one label."""
    a_on_left = bool(label.assignment.a_on_left)
    left = "A" if a_on_left else "B"
    return {
        "id": label.id,
        "assignment": label.assignment_id,
        "choice": to_side(label.outcome, a_on_left=a_on_left),
        "strength": label.strength,
        "criteria": {
            name: to_side(value, a_on_left=a_on_left) for name, value in label.criteria.items()
        },
        "rationale": label.rationale,
        "time_spent_ms": label.time_spent_ms,
        "created_at": _DATETIME.to_representation(label.created_at),
        "classes": {
            ("left" if row.side == left else "right"): row.response_class
            for row in label.response_classes.all()
        },
    }


class SkipInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class UndoInput(serializers.Serializer):
    label_id = _id_field()


class AdjudicationInput(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    judge = _id_field(required=False, allow_null=True)
    expected = _id_field(
        required=False,
        allow_null=True,
        help_text="to revise: the id of the adjudication you are changing (409 if another "
        "lead changed it since)",
    )


class ClassAdjudicationInput(serializers.Serializer):
    A = serializers.ChoiceField(choices=ResponseClass.values, required=False)
    B = serializers.ChoiceField(choices=ResponseClass.values, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("give the final class of response A, B or both")
        return attrs


class ResponseClassesOutput(serializers.Serializer):
    """One response of an item: what people said (counted labels), the lead's final class,
    and the classifier's (null when the audit's adjudication is blind)."""

    side = serializers.CharField()
    given = serializers.DictField(child=serializers.IntegerField())
    disagree = serializers.BooleanField()
    final = serializers.CharField(allow_null=True)
    classifier = serializers.CharField(allow_null=True)


class AdjudicationOutput(serializers.ModelSerializer):
    lead = serializers.CharField(source="lead.get_username")

    class Meta:
        model = Adjudication
        fields = ["id", "item", "outcome", "note", "lead", "reference_judge", "created_at"]


class ReviewLabelOutput(serializers.Serializer):
    annotator = serializers.CharField(source="annotator.get_username")
    outcome = serializers.CharField()
    rationale = serializers.CharField()


class ReviewItemOutput(serializers.Serializer):
    item = serializers.IntegerField(source="item.pk")
    position = serializers.IntegerField(source="item.position")
    stratum = serializers.CharField(source="item.stratum")
    labels = ReviewLabelOutput(many=True)
    judge_outcome = serializers.CharField(allow_null=True)
    reason = serializers.CharField()


# --- Datasets (leads) -------------------------------------------------------------------------


# --- An item as the lead reviews it -----------------------------------------------------------


class ItemLabelOutput(serializers.Serializer):
    annotator = serializers.CharField(source="annotator.get_username")
    outcome = serializers.CharField()
    strength = serializers.IntegerField(allow_null=True)
    criteria = serializers.DictField()
    rationale = serializers.CharField()
    a_on_left = serializers.BooleanField(source="assignment.a_on_left")
    time_spent_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class ItemVerdictOutput(serializers.Serializer):
    judge = serializers.IntegerField(source="judge_id")
    judge_name = serializers.CharField(source="judge.name")
    judge_version = serializers.IntegerField(source="judge.version")
    fingerprint = serializers.CharField(source="judge.fingerprint")
    outcome = serializers.CharField(allow_null=True)
    outcome_ab = serializers.CharField(allow_null=True)
    outcome_ba = serializers.CharField(allow_null=True)
    status_ab = serializers.CharField()
    status_ba = serializers.CharField()
    consistent = serializers.BooleanField(allow_null=True)
    margin = serializers.FloatField(allow_null=True)


class ItemAdjudicationOutput(serializers.Serializer):
    outcome = serializers.CharField()
    note = serializers.CharField()
    lead = serializers.CharField(source="lead.get_username")
    reference_judge = serializers.IntegerField(source="reference_judge_id", allow_null=True)
    created_at = serializers.DateTimeField()


class ItemReviewOutput(serializers.Serializer):
    """Everything a lead decides an item from: the pair with model names, every label with
    its annotator, every judge's verdict, and the decision if there is one."""

    id = serializers.IntegerField(source="item.pk")
    audit = serializers.IntegerField(source="item.audit_id")
    position = serializers.IntegerField(source="item.position")
    stratum = serializers.CharField(source="item.stratum")
    inclusion_probability = serializers.FloatField(source="item.inclusion_probability")
    pair = PairOutput(source="item.pair")
    labels = ItemLabelOutput(many=True)
    verdicts = ItemVerdictOutput(many=True)
    adjudication = ItemAdjudicationOutput(allow_null=True)
