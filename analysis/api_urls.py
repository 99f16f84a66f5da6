"""The report API's URLs (mounted under /api/; the views are analysis/api.py).

Loaded on first use (config.lazy): the views read snapshots through pandas, and this module is
part of the URLconf every web process loads, annotators' requests included.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

from config.lazy import lazy_routes

urlpatterns: list[URLPattern | URLResolver] = [
    *lazy_routes(
        "analysis.api",
        [
            ("audits/<int:pk>/compare/", "audit_compare", "api-audit-compare"),
            ("datasets/<slug:name>/compare/", "dataset_compare", "api-dataset-compare"),
            ("audits/<int:pk>/gate/", "audit_gate", "api-audit-gate"),
            ("audits/<int:pk>/gate/check/", "audit_gate_check", "api-audit-gate-check"),
            ("audits/<int:pk>/report/", "audit_report", "api-audit-report"),
            ("audits/<int:pk>/report/model/", "audit_report_model", "api-audit-report-model"),
            ("audits/<int:pk>/report/history/", "audit_report_history", "api-audit-report-history"),
            (
                "audits/<int:pk>/report/recompute/",
                "audit_report_recompute",
                "api-audit-report-recompute",
            ),
            ("datasets/<slug:name>/report/", "dataset_report", "api-dataset-report"),
            (
                "datasets/<slug:name>/report/model/",
                "dataset_report_model",
                "api-dataset-report-model",
            ),
            (
                "datasets/<slug:name>/report/history/",
                "dataset_report_history",
                "api-dataset-report-history",
            ),
            (
                "datasets/<slug:name>/report/recompute/",
                "dataset_report_recompute",
                "api-dataset-report-recompute",
            ),
        ],
    )
]
