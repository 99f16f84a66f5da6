"""A report-like page exists twice: for an audit (`.../audit/<pk>/...`) and for a dataset
(`.../dataset/<name>/...`). :func:`subject_views` makes both views of one handler."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from annotation.selectors import audit_for_lead
from config.roles import object_for_lead
from corpus.models import Dataset

View = Callable[..., HttpResponse]


def subject_views(handler: View, *, post_only: bool = False) -> tuple[View, View]:
    """The audit view and the dataset view of ``handler(request, audit=...)`` /
    ``handler(request, dataset=...)``: logged in, the subject loaded for a lead (404 for
    anyone else), and with ``post_only`` 405 for any other method before anything is read."""

    def audit_view(request: HttpRequest, pk: int) -> HttpResponse:
        return handler(request, audit=audit_for_lead(request.user, pk))

    def dataset_view(request: HttpRequest, name: str) -> HttpResponse:
        return handler(request, dataset=object_for_lead(request.user, Dataset, name=name))

    views = (audit_view, dataset_view)
    if post_only:
        views = (require_POST(audit_view), require_POST(dataset_view))
    return login_required(views[0]), login_required(views[1])
