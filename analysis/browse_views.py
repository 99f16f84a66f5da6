"""The data browser's pages (leads only): a dataset's pairs, searched and filtered, and one
pair with everything Tribunal knows about it.

The querystring is the state (shareable URLs); the filter form is a plain GET form, and with
htmx each change fetches only the results (`#results` partial) and pushes the URL.
Include at the site root, in config/urls.py: `path("", include("analysis.browse_urls"))`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import urlencode

from analysis import browse
from annotation.markdown import render_markdown
from config.roles import object_for_lead, require_lead
from corpus import search
from corpus.models import Dataset, Pair
from judges.models import Judge, ResponseClass


class PairFilterForm(forms.Form):
    """The filters, read from the querystring. A value that is not one of the choices is a
    message beside its field, never a 500."""

    q = forms.CharField(required=False, max_length=500, label="Text")
    category = forms.CharField(required=False, max_length=100)
    model = forms.CharField(required=False, max_length=200)
    response_class = forms.ChoiceField(
        required=False, choices=[("", "any"), *ResponseClass.choices], label="Response class"
    )
    judge = forms.ModelChoiceField(
        required=False, queryset=Judge.objects.all(), empty_label="any judge"
    )
    verdict = forms.ChoiceField(required=False, choices=[("", "any"), *browse.VERDICT_CHOICES])
    vote = forms.ChoiceField(
        required=False, choices=[("", "any"), *browse.VOTE_CHOICES], label="People's vote"
    )
    disagreement = forms.ChoiceField(
        required=False, choices=[("", "any"), *browse.DISAGREEMENT_CHOICES]
    )
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    before = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def filters(self) -> browse.PairFilters:
        data = self.cleaned_data
        return browse.PairFilters(
            q=data.get("q") or "",
            category=data.get("category") or "",
            model=data.get("model") or "",
            response_class=data.get("response_class") or "",
            judge=data.get("judge"),
            verdict=data.get("verdict") or "",
            vote=data.get("vote") or "",
            disagreement=data.get("disagreement") or "",
        )


FILTER_FIELDS = ("q", "category", "model", "response_class", "judge", "verdict", "vote",
                 "disagreement")  # fmt: skip


def _query(form: PairFilterForm, **page: int) -> str:
    """The querystring of the current filters, with a page key."""
    data = form.cleaned_data if form.is_bound and hasattr(form, "cleaned_data") else {}
    values: dict[str, Any] = {}
    for name in FILTER_FIELDS:
        value = data.get(name)
        if isinstance(value, Judge):
            value = value.pk
        if value not in (None, ""):
            values[name] = value
    values.update(page)
    return urlencode(values)


@login_required
def pair_list(request: HttpRequest, name: str) -> HttpResponse:
    dataset = object_for_lead(request.user, Dataset, name=name)
    form = PairFilterForm(request.GET)
    page = None
    if form.is_valid():
        data = form.cleaned_data
        page = browse.pair_page(
            dataset, form.filters(), after=data.get("after"), before=data.get("before")
        )
    context = {
        "dataset": dataset,
        "form": form,
        "page": page,
        "terms": [term.text for term in search.search_terms(request.GET.get("q", ""))],
        "next_query": _query(form, after=page.next_after) if page and page.next_after else "",
        "previous_query": (
            _query(form, before=page.previous_before) if page and page.previous_before else ""
        ),
        "first_query": _query(form),
        "backend": search.search_backend(),
        # Each row's link is these two around its id (one reverse, not 50).
        "pairs_url": reverse("pair_list", args=[dataset.name]),
        "back_suffix": "?" + urlencode({"back": request.GET.urlencode()}) if request.GET else "",
    }
    if getattr(request, "htmx", False):
        return render(request, "analysis/pair_list.html#results", context)
    context["facets"] = browse.facets(dataset)
    return render(request, "analysis/pair_list.html", context)


@login_required
def pair_detail(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    require_lead(request.user)
    pair = get_object_or_404(
        Pair.objects.select_related("dataset", "prompt", "response_a", "response_b"),
        pk=pk,
        dataset__name=name,
    )
    record = browse.pair_record(pair)
    back = request.GET.get("back", "")
    context = {
        "dataset": pair.dataset,
        "pair": pair,
        "record": record,
        "prompt_html": render_markdown(pair.prompt.text),
        "a_html": render_markdown(pair.response_a.text),
        "b_html": render_markdown(pair.response_b.text),
        # Only our own list's querystring goes back into the link (never a URL).
        "back_query": back if back and "://" not in back and not back.startswith("/") else "",
    }
    return render(request, "analysis/pair_detail.html", context)
