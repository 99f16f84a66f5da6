"""Who may do what. Two roles: leads manage audits and see everything; annotators label."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, Group
from django.http import HttpRequest

LEAD = "lead"
ANNOTATOR = "annotator"


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


def ensure_groups() -> tuple[Group, Group]:
    lead, _ = Group.objects.get_or_create(name=LEAD)
    annotator, _ = Group.objects.get_or_create(name=ANNOTATOR)
    return lead, annotator


def roles(request: HttpRequest) -> dict[str, bool]:
    return {"is_lead": is_lead(request.user)}
