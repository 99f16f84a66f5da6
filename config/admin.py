"""Admin base classes shared by every app."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class HistoryAdmin(admin.ModelAdmin):
    """Read-only: these rows are evidence; editing them would falsify history."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
