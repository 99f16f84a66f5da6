"""The judges pages (leads only): versions, starting a run, watching it; classifying a
dataset's responses and watching that."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from config.roles import object_for_lead, require_lead
from corpus.models import Dataset
from judges import classification, selectors, services
from judges.forms import JudgeCardsQuery, JudgeCreateForm, JudgeRunForm
from judges.models import ClassificationRun, Judge, JudgeRun

ACTIVE = (JudgeRun.Status.PENDING, JudgeRun.Status.RUNNING)
F = TypeVar("F", bound=Form)


def _list_page(request: HttpRequest, *, refused: Form | None = None) -> HttpResponse:
    """The judges with their two forms; ``refused``, a posted form with its errors, comes
    back in its place with status 400."""
    return render(
        request,
        "judges/judge_list.html",
        {
            "judges": selectors.judge_list_with_stats(),
            "runs": selectors.judge_runs(limit=15),
            "run_form": refused if isinstance(refused, JudgeRunForm) else JudgeRunForm(),
            "create_form": refused if isinstance(refused, JudgeCreateForm) else JudgeCreateForm(),
        },
        status=200 if refused is None else 400,
    )


def _list_form_post(
    request: HttpRequest, form_class: type[F], act: Callable[[F], HttpResponse]
) -> HttpResponse:
    """A lead posts one of the list page's forms: once it is valid, ``act(form)`` calls the
    service and redirects. A refused form goes back on the list page, the service's field
    errors on the form's fields (or on the form when it has no such field)."""
    require_lead(request.user)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            return act(form)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
    return _list_page(request, refused=form)


@login_required
def judge_list(request: HttpRequest) -> HttpResponse:
    require_lead(request.user)
    return _list_page(request)


@login_required
@require_POST
def judge_create(request: HttpRequest) -> HttpResponse:
    def create(form: JudgeCreateForm) -> HttpResponse:
        config = services.judge_config_build(**form.config_fields())
        result = services.judge_version_get_or_create(config=config, name=form.cleaned_data["name"])
        judge = result.judge
        if result.created:
            messages.success(request, f"Created {judge} ({judge.fingerprint[:12]}).")
        else:
            messages.info(request, f"This configuration is already {judge}; nothing new.")
        return redirect("judge_detail", pk=judge.pk)

    return _list_form_post(request, JudgeCreateForm, create)


@login_required
def judge_detail(request: HttpRequest, pk: int) -> HttpResponse:
    judge = object_for_lead(request.user, Judge, pk=pk)
    return render(
        request,
        "judges/judge_detail.html",
        {
            "judge": judge,
            "stats": selectors.judge_stats(judge),
            "failures": selectors.judge_failed_orders(judge),
            "runs": selectors.judge_runs(judge=judge),
            "versions": Judge.objects.filter(name=judge.name).order_by("-version"),
            "run_form": JudgeRunForm(initial={"judge": judge.pk}),
        },
    )


@login_required
@require_POST
def judge_run_start(request: HttpRequest) -> HttpResponse:
    def start(form: JudgeRunForm) -> HttpResponse:
        data = form.cleaned_data
        run = services.judge_run_start(
            judge=data["judge"],
            dataset=data["dataset"],
            limit=data["limit"],
            created_by=request.user,
        )
        messages.success(request, f"Run {run.pk} started: {run.judge} on {run.target}.")
        return redirect("judge_run_detail", pk=run.pk)

    return _list_form_post(request, JudgeRunForm, start)


@login_required
def judge_run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The run page; an htmx poll gets only the progress fragment, until the run ends."""
    run = object_for_lead(
        request.user,
        JudgeRun.objects.select_related("judge", "dataset", "created_by"),
        pk=pk,
    )
    template = "judges/run_detail.html"
    if getattr(request, "htmx", False):
        template += "#progress"
    return render(request, template, {"run": run, "active": run.status in ACTIVE})


@login_required
@require_POST
def judge_run_stop(request: HttpRequest, pk: int) -> HttpResponse:
    run = object_for_lead(request.user, JudgeRun, pk=pk)
    if run.status in ACTIVE:
        services.judge_run_stop(run=run)
        messages.info(request, f"Run {run.pk} will stop after the calls in flight.")
    return redirect("judge_run_detail", pk=run.pk)


@login_required
@require_POST
def classification_run_start(request: HttpRequest, name: str) -> HttpResponse:
    """Classify the dataset's responses not yet classified (or show the run already at it)."""
    dataset = object_for_lead(request.user, Dataset, name=name)
    try:
        run, created = classification.classification_run_start(
            dataset=dataset, created_by=request.user
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("dataset_detail", name=dataset.name)
    except classification.RefusalClassifierConfigError as exc:
        messages.error(request, f"The refusal classifier is not usable: {exc}")
        return redirect("dataset_detail", name=dataset.name)
    if created:
        messages.success(request, f"Classification run {run.pk} started on {dataset}.")
    else:
        messages.info(request, f"Run {run.pk} is already classifying {dataset}.")
    return redirect("classification_run_detail", pk=run.pk)


@login_required
def classification_run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The run page; an htmx poll gets only the progress fragment, until the run ends."""
    run = object_for_lead(
        request.user, ClassificationRun.objects.select_related("dataset", "created_by"), pk=pk
    )
    classes = run.counts.get("classes")
    done = run.status == ClassificationRun.Status.DONE
    template = "judges/classification_run.html"
    if getattr(request, "htmx", False):
        template += "#progress"
    return render(
        request,
        template,
        {"run": run, "chart": selectors.class_chart_of(classes) if done and classes else None},
    )


# --- fragments other apps' pages load (htmx), each also a page of its own without JavaScript -


@login_required
def judge_cards(request: HttpRequest) -> HttpResponse:
    """Cards of the judges named in `?judge=`, with their runs whose scope is `?scope=`: the
    audit page loads them (the audit names its judges and its scope, judges owns the rest)."""
    require_lead(request.user)
    query = JudgeCardsQuery(request.GET)
    if not query.is_valid():
        problems = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in query.errors.items())
        return HttpResponseBadRequest(f"Bad judge cards query: {problems}")
    chosen = sorted(query.cleaned_data["judge"], key=lambda j: (j.name, -j.version))
    scope = query.cleaned_data["scope"]
    template = "judges/judge_cards.html"
    if getattr(request, "htmx", False):
        template += "#cards"
    cards = selectors.judge_cards(chosen, scope=scope)
    return render(request, template, {"cards": cards, "scope": scope})


@login_required
def dataset_judging(request: HttpRequest, name: str) -> HttpResponse:
    """The dataset page's card of what judges know of it: verdicts per judge version and the
    responses' refusal classes, with the button that classifies them."""
    dataset = object_for_lead(request.user, Dataset, name=name)
    context = {
        "dataset": dataset,
        "verdicts": selectors.dataset_verdict_count(dataset),
        "judges": selectors.dataset_judges(dataset),
        "classes": selectors.dataset_classes(dataset),
        "classification_run": selectors.classification_run_latest(dataset),
    }
    template = "judges/dataset_judging.html"
    if getattr(request, "htmx", False):
        template += "#judging"
    return render(request, template, context)


@login_required
def dataset_families(request: HttpRequest, name: str) -> HttpResponse:
    """The families of a dataset's models and of the judges with verdicts on it, which the
    self-family preference figure reads; a lead sets or clears them (blank = the default
    read from the name)."""
    dataset = object_for_lead(request.user, Dataset, name=name)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        names = request.POST.getlist("model_name")
        model_values = request.POST.getlist("model_family")
        ids = request.POST.getlist("judge_id")
        judge_values = request.POST.getlist("judge_family")
        if len(names) != len(model_values) or len(ids) != len(judge_values):
            return HttpResponseBadRequest("each model name and judge needs one family field")
        try:
            judges = {int(pk): value for pk, value in zip(ids, judge_values, strict=True)}
        except ValueError:
            return HttpResponseBadRequest("judge ids are numbers")
        try:
            counts = services.families_update(
                models=dict(zip(names, model_values, strict=True)),
                judges=judges,
                user=request.user,
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            messages.success(
                request,
                f"Families saved: {counts['set']} set by you, {counts['cleared']} back to "
                "the default. Reports computed from now on use them.",
            )
            return redirect("dataset_families", name=dataset.name)
    families = selectors.dataset_families(dataset)
    status = 400 if errors else 200
    return render(
        request,
        "judges/dataset_families.html",
        {"dataset": dataset, "families": families, "errors": errors},
        status=status,
    )
