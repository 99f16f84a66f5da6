"""Who may do what, for every app. Two roles: leads manage datasets, judges, audits and
reports and see everything; annotators label the audits they are listed on.

Every page and API checks access through the helpers here (and `config.api.IsLead`, the same
rule as a DRF permission), so "leads only" means one thing everywhere: anyone else who is
logged in gets a 403 before anything is looked up, and a missing object is a 404 only for a
lead. Checks that depend on an audit's membership live with audits
(`annotation.selectors.audit_for_annotator`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

LEAD = "lead"
ANNOTATOR = "annotator"
LEADS_ONLY = "Leads only."

M = TypeVar("M", bound=Model)


def is_lead(user: Any) -> bool:
    if isinstance(user, AnonymousUser) or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_tribunal_is_lead", None)
    if cached is None:
        cached = user.groups.filter(name=LEAD).exists()
        user._tribunal_is_lead = cached
    return bool(cached)


def require_lead(user: Any) -> None:
    """Raise PermissionDenied (a 403, also under DRF) unless `user` is a lead."""
    if not is_lead(user):
        raise PermissionDenied(LEADS_ONLY)


def object_for_lead(user: Any, queryset: type[M] | QuerySet[M], **lookup: Any) -> M:
    """The object for a lead: 403 for anyone else (before the look-up), 404 if missing."""
    require_lead(user)
    return get_object_or_404(queryset, **lookup)


def ensure_groups() -> tuple[Group, Group]:
    lead, _ = Group.objects.get_or_create(name=LEAD)
    annotator, _ = Group.objects.get_or_create(name=ANNOTATOR)
    return lead, annotator


def roles(request: HttpRequest) -> dict[str, bool]:
    """Template context processor: `is_lead` on every page."""
    return {"is_lead": is_lead(request.user)}
