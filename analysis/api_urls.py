"""The report API's URLs (mounted under /api/; the views are analysis/api.py).

Loaded on first use (config.lazy): the views read snapshots through pandas, and this module is
part of the URLconf every web process loads, annotators' requests included.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from config.lazy import lazy_view

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "audits/<int:pk>/compare/",
        lazy_view("analysis.api.audit_compare"),
        name="api-audit-compare",
    ),
    path(
        "datasets/<slug:name>/compare/",
        lazy_view("analysis.api.dataset_compare"),
        name="api-dataset-compare",
    ),
    path("audits/<int:pk>/gate/", lazy_view("analysis.api.audit_gate"), name="api-audit-gate"),
    path(
        "audits/<int:pk>/gate/check/",
        lazy_view("analysis.api.audit_gate_check"),
        name="api-audit-gate-check",
    ),
    path(
        "audits/<int:pk>/report/", lazy_view("analysis.api.audit_report"), name="api-audit-report"
    ),
    path(
        "audits/<int:pk>/report/history/",
        lazy_view("analysis.api.audit_report_history"),
        name="api-audit-report-history",
    ),
    path(
        "audits/<int:pk>/report/recompute/",
        lazy_view("analysis.api.audit_report_recompute"),
        name="api-audit-report-recompute",
    ),
    path(
        "datasets/<slug:name>/report/",
        lazy_view("analysis.api.dataset_report"),
        name="api-dataset-report",
    ),
    path(
        "datasets/<slug:name>/report/history/",
        lazy_view("analysis.api.dataset_report_history"),
        name="api-dataset-report-history",
    ),
    path(
        "datasets/<slug:name>/report/recompute/",
        lazy_view("analysis.api.dataset_report_recompute"),
        name="api-dataset-report-recompute",
    ),
]
