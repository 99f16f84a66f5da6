from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_POST
from django_htmx.middleware import HtmxDetails

from annotation import queue, selectors, services
from annotation.forms import (
    AdjudicationForm,
    AnnotatorsForm,
    AuditBuildForm,
    AuditJudgeRunForm,
    AuditOptionsForm,
    AvailabilityForm,
    GoldForm,
    GrowForm,
    LabelForm,
    OverlapForm,
    SetAsideForm,
    SkipForm,
    drift_pair,
)
from annotation.markdown import render_markdown
from annotation.models import (
    RESPONSE_CLASS_CHOICES,
    Adjudication,
    Assignment,
    Audit,
    AuditItem,
    Label,
    Stratum,
)
from config.roles import is_lead, require_lead
from judges import services as judges_services
from judges.models import Judge, ResponseClass


class AuthedRequest(HttpRequest):
    """What the middleware gives every view here: a logged-in user and htmx details."""

    user: User
    htmx: HtmxDetails


def _assignment_for(request: AuthedRequest, audit: Audit, assignment_id: int) -> Assignment:
    assignment = get_object_or_404(
        Assignment.objects.select_related("item"),
        pk=assignment_id,
        annotator=request.user,
        item__audit=audit,
    )
    assignment.annotator = request.user
    assignment.item.audit = audit
    return assignment


@login_required
def home(request: AuthedRequest) -> HttpResponse:
    if is_lead(request.user):
        return redirect("audit_list")
    audits = selectors.audits_visible_to(request.user)
    return render(request, "annotation/home.html", {"audits": audits})


# --- Audits (leads) ---------------------------------------------------------------------------


@login_required
def audit_list(request: AuthedRequest) -> HttpResponse:
    require_lead(request.user)
    audits = selectors.audits_visible_to(request.user)
    mine = set(request.user.audits_assigned.values_list("pk", flat=True))
    return render(request, "annotation/audit_list.html", {"audits": audits, "mine": mine})


def _availability(form: AvailabilityForm | AuditBuildForm) -> dict[str, int] | None:
    data = form.cleaned_data
    if not data.get("dataset"):
        return None
    return selectors.stratum_availability(
        dataset=data["dataset"],
        judges=list(data.get("judges") or []),
        margin_threshold=data.get("margin_threshold"),
        classifier=data.get("classifier") or None,
        drift=drift_pair(form),
    )


@login_required
def audit_availability(request: AuthedRequest) -> HttpResponse:
    """The pool per stratum for the builder's current choices (an htmx fragment)."""
    require_lead(request.user)
    form = AvailabilityForm(request.GET)
    available = _availability(form) if form.is_valid() else None
    return render(
        request,
        "annotation/audit_form.html#availability",
        {"available": available, "availability_errors": form.errors},
    )


@login_required
def audit_create(request: AuthedRequest) -> HttpResponse:
    require_lead(request.user)
    available = None
    if request.method == "POST":
        form = AuditBuildForm(request.POST)
        if form.is_valid():
            available = _availability(form)
            if "preview" not in request.POST:
                data = form.cleaned_data
                try:
                    audit = services.audit_build(
                        name=data["name"],
                        dataset=data["dataset"],
                        judges=list(data["judges"]),
                        size=data["size"],
                        overlap_k=data["overlap_k"],
                        quotas=form.quotas(),
                        thresholds={"margin": data.get("margin_threshold")},
                        seed=data["seed"],
                        created_by=request.user,
                        annotators=list(data["annotators"]),
                        guidelines=data["guidelines"],
                        allow_both_bad=data["allow_both_bad"],
                        allow_strength=data["allow_strength"],
                        criteria=form.criteria_names(),
                        hold_seconds=data["hold_minutes"] * 60,
                        classifier=data.get("classifier") or None,
                        queue_policy=data["queue_policy"] or Audit.QueuePolicy.COMPLETE_FIRST,
                        blind_adjudication=data["blind_adjudication"],
                        ask_response_classes=data["ask_response_classes"],
                        drift_judges=form.drift_judges(),
                    )
                except ValidationError as exc:
                    for key, errors in exc.message_dict.items():
                        target = AuditBuildForm.FIELD_FOR.get(key, key)
                        form.add_error(target if target in form.fields else None, errors)
                else:
                    messages.success(
                        request, f"Audit “{audit.name}” created with {audit.target_size} items."
                    )
                    return redirect("audit_detail", audit.pk)
    else:
        form = AuditBuildForm(initial={"dataset": request.GET.get("dataset")})
        availability = AvailabilityForm(request.GET)
        if request.GET.get("dataset") and availability.is_valid():
            available = _availability(availability)
    return render(request, "annotation/audit_form.html", {"form": form, "available": available})


@login_required
def audit_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    audit = selectors.audit_for_lead(request.user, pk)
    judges = list(audit.judges.all())
    # The judges' cards are the judges app's fragment: the audit names its judges and the
    # scope of the runs over its items, the fragment reads the rest.
    judge_query: list[tuple[str, int | str]] = [("judge", judge.pk) for judge in judges]
    judge_query.append(("scope", selectors.audit_scope_label(audit)))
    capacity = selectors.audit_capacity(audit)
    context = {
        "audit": audit,
        "progress": selectors.audit_progress(audit),
        "capacity": capacity,
        "strata": selectors.strata_summary(audit),
        "growth": (audit.selection or {}).get("growth", []),
        "quality": selectors.quality_table(audit),
        "gold": selectors.gold_items(audit),
        "annotators_form": AnnotatorsForm(initial={"annotators": audit.annotators.all()}),
        "grow_form": GrowForm(initial={"n": min(capacity.pairs_left, 20) or None}),
        "overlap_form": OverlapForm(initial={"overlap_k": audit.overlap_k + 1}),
        "options_form": AuditOptionsForm(
            initial={
                "queue_policy": audit.queue_policy,
                "blind_adjudication": audit.blind_adjudication,
                "ask_response_classes": audit.ask_response_classes,
                "gold_percent": audit.gold_percent,
                "qc_min_seconds": audit.qc_min_seconds,
                "qc_min_gold_accuracy": audit.qc_min_gold_accuracy,
            }
        ),
        "gold_form": GoldForm(),
        "judges": judges,
        "judge_cards_query": urlencode(judge_query),
        "judge_run_form": AuditJudgeRunForm(initial={"judge": judges[0] if judges else None}),
        "rejudge_form": AuditJudgeRunForm(auto_id="id_rejudge_%s"),
        "rejudges": _rejudge_rows(audit),
        "to_adjudicate": len(
            selectors.adjudication_queue(audit, reference_judge=_default_judge(audit, judges))
        ),
        "is_annotator": audit.annotators.filter(pk=request.user.pk).exists(),
    }
    return render(request, "annotation/audit_detail.html", context)


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _audit_form_post(
    request: AuthedRequest,
    pk: int,
    form_class: type[forms.Form],
    act: Callable[[Audit, dict[str, Any]], str],
    *,
    invalid: str,
    refused: str = "",
    anchor: str = "",
) -> HttpResponse:
    """A lead's form on the audit page: validate, call the service through `act` (which says
    what it did), and come back to the page with the outcome as a message."""
    audit = selectors.audit_for_lead(request.user, pk)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, invalid)
    else:
        try:
            done = act(audit, form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, refused + _errors(exc))
        else:
            messages.success(request, done)
    return redirect(reverse("audit_detail", args=[audit.pk]) + anchor)


@login_required
@require_POST
def audit_grow(request: AuthedRequest, pk: int) -> HttpResponse:
    """Add items to the audit from its strata (services.audit_grow)."""

    def grow(audit: Audit, data: dict[str, Any]) -> str:
        added = services.audit_grow(audit=audit, n=data["n"], by=request.user)
        parts = ", ".join(f"{n} {Stratum(name).label.lower()}" for name, n in added.items())
        return f"{sum(added.values())} items added ({parts})."

    return _audit_form_post(
        request,
        pk,
        GrowForm,
        grow,
        invalid="Add items: give a whole number of at least 1.",
        refused="No items added: ",
        anchor="#capacity",
    )


@login_required
@require_POST
def audit_overlap(request: AuthedRequest, pk: int) -> HttpResponse:
    def raise_k(audit: Audit, data: dict[str, Any]) -> str:
        services.audit_overlap_set(audit=audit, overlap_k=data["overlap_k"])
        return f"Each item now gets {audit.overlap_k} labels."

    return _audit_form_post(
        request,
        pk,
        OverlapForm,
        raise_k,
        invalid="k: give a whole number from 1 to 20.",
        anchor="#capacity",
    )


@login_required
@require_POST
def audit_options(request: AuthedRequest, pk: int) -> HttpResponse:
    form = AuditOptionsForm(request.POST)
    invalid = " ".join(
        f"{form.fields[name].label}: {' '.join(map(str, errors))}"
        for name, errors in form.errors.items()
    )

    def save(audit: Audit, data: dict[str, Any]) -> str:
        services.audit_options_set(audit=audit, **data)
        return "Settings saved."

    return _audit_form_post(request, pk, AuditOptionsForm, save, invalid=invalid)


@login_required
@require_POST
def audit_gold(request: AuthedRequest, pk: int) -> HttpResponse:
    """Add gold pairs (lines of "source key, answer, note")."""

    def add(audit: Audit, data: dict[str, Any]) -> str:
        items = services.gold_add(audit=audit, lines=services.parse_gold_lines(data["lines"]))
        note = "" if audit.gold_percent else " Set a gold rate above 0 to serve them."
        return f"{len(items)} gold pair(s) added.{note}"

    return _audit_form_post(
        request,
        pk,
        GoldForm,
        add,
        invalid="Gold pairs: paste at least one line.",
        refused="No gold pair added: ",
        anchor="#gold",
    )


@login_required
@require_POST
def audit_gold_remove(request: AuthedRequest, pk: int, item_id: int) -> HttpResponse:
    def remove(audit: Audit, data: dict[str, Any]) -> str:
        services.gold_remove(audit=audit, item_id=item_id)
        return "Gold pair removed."

    return _audit_form_post(request, pk, forms.Form, remove, invalid="", anchor="#gold")


@login_required
@require_POST
def annotator_set_aside(request: AuthedRequest, pk: int, user_id: int) -> HttpResponse:
    """Set an annotator's labels aside, or count them again (leads)."""
    audit = selectors.audit_for_lead(request.user, pk)
    person = get_object_or_404(
        User.objects.filter(Q(audits_assigned=audit) | Q(labels__item__audit=audit)).distinct(),
        pk=user_id,
    )
    form = SetAsideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose whether to set the labels aside or count them again.")
    elif form.cleaned_data["action"] == "set_aside":
        services.annotator_set_aside(
            audit=audit, annotator=person, by=request.user, reason=form.cleaned_data["reason"]
        )
        messages.success(
            request,
            f"{person.get_username()}'s labels are set aside: kept, not counted, and the items "
            "they labelled go to others again.",
        )
    else:
        services.annotator_count_again(audit=audit, annotator=person)
        messages.success(request, f"{person.get_username()}'s labels count again.")
    return redirect(reverse("audit_detail", args=[audit.pk]) + "#quality")


@login_required
@require_POST
def audit_annotators(request: AuthedRequest, pk: int) -> HttpResponse:
    audit = selectors.audit_for_lead(request.user, pk)
    form = AnnotatorsForm(request.POST)
    if form.is_valid():
        try:
            services.audit_annotators_set(
                audit=audit, annotators=list(form.cleaned_data["annotators"])
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Annotators updated.")
    else:
        messages.error(request, "Choose at least one annotator.")
    return redirect("audit_detail", audit.pk)


@login_required
@require_POST
def audit_status(request: AuthedRequest, pk: int) -> HttpResponse:
    audit = selectors.audit_for_lead(request.user, pk)
    try:
        services.audit_status_set(audit=audit, status=request.POST.get("status", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("audit_detail", audit.pk)


@login_required
@require_POST
def audit_judge_run(request: AuthedRequest, pk: int) -> HttpResponse:
    """Start a judge run over the audit's items in serving order; the run page follows it."""
    audit = selectors.audit_for_lead(request.user, pk)
    form = AuditJudgeRunForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a judge, and a limit of at least 1 or none.")
        return redirect("audit_detail", audit.pk)
    try:
        run = judges_services.judge_run_start(
            judge=form.cleaned_data["judge"],
            limit=form.cleaned_data["limit"],
            created_by=request.user,
            **selectors.audit_run_scope(audit),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("audit_detail", audit.pk)
    messages.success(request, f"Run {run.pk} started: {run.judge} on {run.target}.")
    return redirect("judge_run_detail", pk=run.pk)


@login_required
@require_POST
def audit_rejudge(request: AuthedRequest, pk: int) -> HttpResponse:
    """Re-judge the calibration set: run a judge version on exactly the pairs people labelled;
    the audit page lists the run and, once done, links its comparison with the earlier version."""
    audit = selectors.audit_for_lead(request.user, pk)
    form = AuditJudgeRunForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose the judge version to run on the labelled pairs.")
        return redirect(reverse("audit_detail", args=[audit.pk]) + "#rejudge")
    try:
        rejudge = services.audit_rejudge(
            audit=audit, judge=form.cleaned_data["judge"], created_by=request.user
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(reverse("audit_detail", args=[audit.pk]) + "#rejudge")
    run = rejudge.run
    messages.success(request, f"Run {run.pk} started: {run.judge} on {run.total} labelled pairs.")
    return redirect(reverse("audit_detail", args=[audit.pk]) + "#rejudge")


def _rejudge_rows(audit: Audit) -> list[dict[str, Any]]:
    """The audit's re-judge runs, each with the comparison to open once it is done."""
    rows = []
    for run in selectors.audit_rejudge_runs(audit):
        baseline = selectors.audit_rejudge_baseline(audit, run.judge)
        compare_url = ""
        if baseline is not None and run.status == run.Status.DONE:
            query = urlencode({"a": baseline.pk, "b": run.judge.pk})
            compare_url = f"{reverse('audit_compare', args=[audit.pk])}?{query}"
        rows.append({"run": run, "baseline": baseline, "compare_url": compare_url})
    return rows


# --- Annotator workspace ---------------------------------------------------------------------


def _workspace(
    request: AuthedRequest,
    audit: Audit,
    assignment: Assignment | None,
    *,
    notice: str = "",
    notice_level: str = "info",
    errors: list[str] | None = None,
    prefill: dict[str, Any] | None = None,
) -> HttpResponse:
    """The workspace page, or for htmx requests just its #workspace fragment.

    Blind by construction: the context holds the texts, the side order's screen labels and
    counts. No model name, verdict or other annotator's label is ever put into it.
    """
    user = request.user
    now = timezone.now()
    undo = selectors.undoable_label(audit, user, now=now)
    context: dict[str, Any] = {
        "audit": audit,
        "progress": selectors.audit_progress(audit, user),
        "notice": notice,
        "notice_level": notice_level,
        "guidelines_html": render_markdown(audit.guidelines) if audit.guidelines else "",
        "undo": undo,
        "undo_seconds_left": (
            max(1, int(selectors.undo_seconds() - (now - undo.created_at).total_seconds()))
            if undo
            else 0
        ),
        "assignment": None,
    }
    if assignment is not None:
        pair = assignment.item.pair
        left, right = (
            (pair.response_a, pair.response_b)
            if assignment.a_on_left
            else (pair.response_b, pair.response_a)
        )
        prefill = prefill or {}
        criteria_prefill = prefill.get("criteria", {})
        classes_prefill = prefill.get("classes", {})
        context.update(
            {
                "assignment": assignment,
                "prompt_html": render_markdown(pair.prompt.text),
                "left_html": render_markdown(left.text),
                "right_html": render_markdown(right.text),
                "submission_key": uuid.uuid4(),
                "criteria": [
                    (index, name, criteria_prefill.get(name, ""))
                    for index, name in enumerate(audit.criteria)
                ],
                "errors": errors or [],
                "prefill": prefill,
                "skip_form": SkipForm(),
                # What each response did: asked after the choice, never showing the
                # classifier's answer (the context holds no class at all).
                "class_rows": [
                    (side, title, classes_prefill.get(side, ""))
                    for side, title in (("left", "Left"), ("right", "Right"))
                ]
                if audit.ask_response_classes
                else [],
                "response_classes": RESPONSE_CLASS_CHOICES,
            }
        )
    else:
        context["set_aside"] = selectors.is_set_aside(audit, user)
        context["waiting"] = selectors.items_open_to(audit, user)
    template = "annotation/workspace.html"
    if request.htmx:
        template += "#workspace"
    return render(request, template, context)


@login_required
def workspace(request: AuthedRequest, pk: int) -> HttpResponse:
    audit = selectors.audit_for_annotator(request.user, pk)
    assignment = queue.queue_next(audit=audit, annotator=request.user)
    return _workspace(request, audit, assignment)


def _prefill_from_post(form: LabelForm) -> dict[str, Any]:
    data = form.cleaned_data if hasattr(form, "cleaned_data") else {}
    return {
        "rationale": data.get("rationale", ""),
        "strength": data.get("strength"),
        "criteria": form.criteria_values() if data else {},
        "classes": form.classes() if data else {},
    }


@login_required
@require_POST
def label_submit(request: AuthedRequest, pk: int, assignment_id: int) -> HttpResponse:
    audit = selectors.audit_for_annotator(request.user, pk)
    assignment = _assignment_for(request, audit, assignment_id)
    form = LabelForm(request.POST, criteria=audit.criteria)
    errors: list[str] = []
    notice, level = "", "info"
    following: Assignment | None = None
    served_next = False
    if form.is_valid():
        data = form.cleaned_data
        try:
            result, following = queue.label_submit_and_next(
                assignment=assignment,
                choice=data["choice"],
                submission_key=data["submission_key"],
                strength=data.get("strength"),
                criteria=form.criteria_values(),
                rationale=data.get("rationale", ""),
                time_spent_ms=data.get("time_spent_ms"),
                classes=form.classes(),
            )
            served_next = True
        except queue.InvalidLabel as exc:
            errors.append(exc.message)
        except queue.QueueError as exc:
            notice, level = exc.message, "warn"
        else:
            notice = "Label saved." if result.created else "Already saved."
    else:
        errors.extend(
            "Choose left, right or tie."
            if name == "choice"
            else f"{name}: {' '.join(str(m) for m in msgs)}"
            for name, msgs in form.errors.items()
        )
    if errors:
        # The same item again, with the annotator's inputs kept.
        if request.htmx:
            current = selectors.served_assignment(assignment.pk)
            if current.status == Assignment.Status.HELD:
                return _workspace(
                    request, audit, current, errors=errors, prefill=_prefill_from_post(form)
                )
        messages.error(request, " ".join(errors))
        return redirect("workspace", audit.pk)
    if not request.htmx:
        if notice:
            getattr(messages, "warning" if level == "warn" else "success")(request, notice)
        return redirect("workspace", audit.pk)
    if not served_next:
        following = queue.queue_next(audit=audit, annotator=request.user)
    return _workspace(request, audit, following, notice=notice, notice_level=level)


@login_required
@require_POST
def item_skip(request: AuthedRequest, pk: int, assignment_id: int) -> HttpResponse:
    audit = selectors.audit_for_annotator(request.user, pk)
    assignment = _assignment_for(request, audit, assignment_id)
    form = SkipForm(request.POST)
    notice, level = "Skipped.", "info"
    if not form.is_valid():
        notice, level = "Choose a reason to skip.", "warn"
    else:
        try:
            queue.item_skip(assignment=assignment, reason=form.reason_text())
        except queue.QueueError as exc:
            notice, level = exc.message, "warn"
    if not request.htmx:
        getattr(messages, "warning" if level == "warn" else "info")(request, notice)
        return redirect("workspace", audit.pk)
    following = queue.queue_next(audit=audit, annotator=request.user)
    return _workspace(request, audit, following, notice=notice, notice_level=level)


@login_required
@require_POST
def label_undo(request: AuthedRequest, pk: int) -> HttpResponse:
    audit = selectors.audit_for_annotator(request.user, pk)
    try:
        label_id = int(request.POST.get("label_id", ""))
    except ValueError:
        label_id = 0
    previous = (
        Label.objects.filter(pk=label_id, annotator=request.user, item__audit=audit)
        .select_related("assignment")
        .first()
    )
    prefill: dict[str, Any] = {}
    notice, level = "", "info"
    if previous is None:
        notice, level = "That label has already been undone.", "warn"
    else:
        a_on_left = previous.assignment.a_on_left
        prefill = {
            "choice": queue.to_side(previous.outcome, a_on_left=a_on_left),
            "rationale": previous.rationale,
            "strength": previous.strength,
            "criteria": {
                name: queue.to_side(value, a_on_left=a_on_left)
                for name, value in previous.criteria.items()
            },
        }
        try:
            queue.label_undo(label_id=previous.pk, annotator=request.user)
        except queue.QueueError as exc:
            notice, level, prefill = exc.message, "warn", {}
        else:
            notice = "Label undone: choose again."
    if not request.htmx:
        getattr(messages, "warning" if level == "warn" else "info")(request, notice)
        return redirect("workspace", audit.pk)
    current = queue.queue_next(audit=audit, annotator=request.user)
    return _workspace(request, audit, current, notice=notice, notice_level=level, prefill=prefill)


@login_required
def my_labels(request: AuthedRequest, pk: int) -> HttpResponse:
    """An annotator's own answers in an audit, in the sides they saw, with their changes.
    Nobody else's."""
    audit = selectors.audit_for_annotator(request.user, pk)
    history = selectors.label_history(audit, request.user)
    rows = [
        {
            "label": label,
            "side": queue.to_side(label.outcome, a_on_left=label.assignment.a_on_left),
            "seconds": label.time_spent_ms / 1000,
            "changes": len(history.get(label.item_id, [])),
        }
        for label in selectors.my_labels(audit, request.user)
    ]
    return render(request, "annotation/my_labels.html", {"audit": audit, "rows": rows})


@login_required
def label_revise(request: AuthedRequest, pk: int, label_id: int) -> HttpResponse:
    """Change one of your own labels while the audit is open: the item as you saw it (same
    sides), your answer, and its history. Blind: no model names, verdicts or other labels."""
    audit = selectors.audit_for_annotator(request.user, pk)
    label = get_object_or_404(
        Label.objects.select_related(
            "assignment", "item__pair__prompt", "item__pair__response_a", "item__pair__response_b"
        ),
        pk=label_id,
        annotator=request.user,
        item__audit=audit,
    )
    a_on_left = label.assignment.a_on_left
    errors: list[str] = []
    form = LabelForm(request.POST or None, criteria=audit.criteria)
    if request.method == "POST":
        if form.is_valid():
            try:
                result = queue.label_revise(
                    label_id=label.pk, annotator=request.user, **form.answer()
                )
            except queue.InvalidLabel as exc:
                errors.append(exc.message)
            except queue.QueueError as exc:
                messages.warning(request, exc.message)
                return redirect("my_labels", audit.pk)
            else:
                messages.success(
                    request,
                    f"Item {label.item.position + 1}: your label is now "
                    f"“{queue.to_side(result.label.outcome, a_on_left=a_on_left)}”."
                    if result.created
                    else "Nothing changed.",
                )
                return redirect("my_labels", audit.pk)
        else:
            errors.append("Choose left, right or tie.")
    pair = label.item.pair
    left, right = (
        (pair.response_a, pair.response_b) if a_on_left else (pair.response_b, pair.response_a)
    )
    history = [
        {
            "revision": revision,
            "before": _seen(revision.before, a_on_left),
            "after": _seen(revision.after, a_on_left) if revision.after else None,
        }
        for revision in selectors.label_history(audit, request.user).get(label.item_id, [])
    ]
    context = {
        "audit": audit,
        "label": label,
        "side": queue.to_side(label.outcome, a_on_left=a_on_left),
        "prompt_html": render_markdown(pair.prompt.text),
        "left_html": render_markdown(left.text),
        "right_html": render_markdown(right.text),
        "submission_key": uuid.uuid4(),
        "criteria": [
            (index, name, queue.to_side(label.criteria.get(name, ""), a_on_left=a_on_left))
            for index, name in enumerate(audit.criteria)
        ],
        "history": history,
        "errors": errors,
        "class_rows": _class_rows(label) if audit.ask_response_classes else [],
        "response_classes": RESPONSE_CLASS_CHOICES,
    }
    return render(request, "annotation/label_revise.html", context)


def _class_rows(label: Label) -> list[tuple[str, str, str]]:
    """(screen side, title, the class given) for each response of a label."""
    given = queue.label_classes(label)
    left, right = ("A", "B") if label.assignment.a_on_left else ("B", "A")
    return [("left", "Left", given.get(left, "")), ("right", "Right", given.get(right, ""))]


def _seen(state: dict[str, Any], a_on_left: bool) -> str:
    """A stored answer (pair labelling) as the annotator saw it: a side, or tie/both bad."""
    return queue.to_side(state.get("outcome", ""), a_on_left=a_on_left).replace("_", " ")


# --- Adjudication (leads) --------------------------------------------------------------------


def _default_judge(audit: Audit, judges: list[Judge]) -> Judge | None:
    """The judge adjudication compares with by default: the audit's first, none when blind."""
    if audit.blind_adjudication:
        return None
    return judges[0] if judges else None


def _reference_judge(request: AuthedRequest, audit: Audit) -> Judge | None:
    if audit.blind_adjudication:
        return None  # blind: no judge verdict reaches the adjudicator, not even as a filter
    raw = request.GET.get("judge") or request.POST.get("judge")
    if raw == "none":
        return None
    if raw:
        try:
            return audit.judges.get(pk=int(raw))
        except (ValueError, Judge.DoesNotExist):
            return None
    return audit.judges.first()


@login_required
def adjudication_queue(request: AuthedRequest, pk: int) -> HttpResponse:
    audit = selectors.audit_for_lead(request.user, pk)
    judge = _reference_judge(request, audit)
    context = {
        "audit": audit,
        "judge": judge,
        "judges": [] if audit.blind_adjudication else audit.judges.all(),
        "queue": selectors.adjudication_queue(audit, reference_judge=judge),
        "class_disagreements": selectors.class_disagreements(audit)
        if audit.ask_response_classes
        else [],
        "decided": audit.items.filter(adjudication__isnull=False)
        .select_related("adjudication__lead")
        .order_by("-adjudication__created_at")[:50],
    }
    template = "annotation/adjudication_queue.html"
    if request.htmx:
        template += "#queue"
    return render(request, template, context)


@login_required
def adjudication_item(request: AuthedRequest, pk: int, item_id: int) -> HttpResponse:
    audit = selectors.audit_for_lead(request.user, pk)
    item = get_object_or_404(
        AuditItem.objects.sampled().select_related(
            "pair__prompt", "pair__response_a", "pair__response_b", "audit"
        ),
        pk=item_id,
        audit=audit,
    )
    judge = _reference_judge(request, audit)
    adjudication = Adjudication.objects.filter(item=item).select_related("lead").first()
    form = AdjudicationForm(
        request.POST or None,
        initial=(
            {
                "outcome": adjudication.outcome,
                "note": adjudication.note,
                "expected": adjudication.pk,
            }
            if adjudication
            else None
        ),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        query = f"?judge={judge.pk if judge else 'none'}"
        try:
            if adjudication is None:
                services.adjudication_decide(
                    item=item,
                    lead=request.user,
                    outcome=data["outcome"],
                    note=data["note"],
                    reference_judge=judge,
                )
            else:
                services.adjudication_revise(
                    item=item,
                    lead=request.user,
                    outcome=data["outcome"],
                    note=data["note"],
                    expected=data.get("expected"),
                    reference_judge=judge,
                )
        except ValidationError as exc:
            form.add_error("outcome", exc.messages)
        except (services.AlreadyAdjudicated, services.AdjudicationChanged) as exc:
            messages.warning(request, exc.message)
            return redirect(reverse("adjudication_item", args=[audit.pk, item.pk]) + query)
        else:
            if adjudication is not None:
                messages.success(request, f"Item {item.position + 1}: decision revised.")
                return redirect(reverse("adjudication_item", args=[audit.pk, item.pk]) + query)
            messages.success(request, f"Item {item.position + 1} decided.")
            remaining = selectors.adjudication_queue(audit, reference_judge=judge)
            if remaining:
                target = reverse("adjudication_item", args=[audit.pk, remaining[0].item.pk])
            else:
                target = reverse("adjudication_queue", args=[audit.pk])
            return redirect(target + query)
    pair = item.pair
    review = selectors.item_review(item, blind=audit.blind_adjudication)
    context = {
        "audit": audit,
        "item": item,
        "pair": pair,
        "judge": judge,
        "blind": audit.blind_adjudication,
        "prompt_html": render_markdown(pair.prompt.text),
        "a_html": render_markdown(pair.response_a.text),
        "b_html": render_markdown(pair.response_b.text),
        "labels": review["labels"],
        "verdicts": review["verdicts"],
        "history": review["history"],
        "adjudication": adjudication,
        "form": form,
        "class_rows": selectors.item_response_classes(item, blind=audit.blind_adjudication)
        if audit.ask_response_classes
        else [],
        "response_classes": RESPONSE_CLASS_CHOICES,
    }
    return render(request, "annotation/adjudication_item.html", context)


@login_required
@require_POST
def class_adjudicate(request: AuthedRequest, pk: int, item_id: int) -> HttpResponse:
    """A lead's final class for the responses of an item (where people disagree on what a
    response did). Fields `class_A` and `class_B`; an empty one leaves that response as is."""
    audit = selectors.audit_for_lead(request.user, pk)
    item = get_object_or_404(
        AuditItem.objects.sampled().select_related("pair", "audit"), pk=item_id, audit=audit
    )
    decided = []
    for side in ("A", "B"):
        value = request.POST.get(f"class_{side}", "")
        if not value:
            continue
        try:
            services.class_adjudicate(item=item, side=side, response_class=value, lead=request.user)
        except ValidationError as exc:
            messages.error(request, f"Response {side}: {_errors(exc)}")
            break
        decided.append(f"{side}: {ResponseClass(value).label.lower()}")
    if decided:
        messages.success(
            request, f"Item {item.position + 1}: classes decided ({', '.join(decided)})."
        )
    judge = request.POST.get("judge") or "none"
    return redirect(reverse("adjudication_item", args=[audit.pk, item.pk]) + f"?judge={judge}")
