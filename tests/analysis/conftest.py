"""Fixtures of the report tests (pages and API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.analysis.test_snapshot import AuditData, build_audit


@pytest.fixture
def data(lead: User) -> AuditData:
    """The small labelled audit of :func:`tests.analysis.test_snapshot.build_audit`, led by
    the ``lead`` persona (modules that build it otherwise define their own ``data``)."""
    return build_audit(lead=lead)


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[..., Any]:
    """Run what a request left for after its commit, as a live server does at once."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
