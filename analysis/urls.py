from __future__ import annotations

from django.urls import URLPattern, URLResolver

from config.lazy import lazy_routes

# The report pages need pandas and scipy: their modules load on the first request to one of
# them, not with the URLconf, so a web process that serves only annotators never loads them.

urlpatterns: list[URLPattern | URLResolver] = [
    *lazy_routes(
        "analysis.views",
        [
            ("", "report_index", "report_index"),
            ("audit/<int:pk>/", "audit_report", "audit_report"),
            ("audit/<int:pk>/recompute/", "audit_report_recompute", "audit_report_recompute"),
            ("audit/<int:pk>/gate/", "audit_gate", "audit_gate"),
            ("audit/<int:pk>/precision/", "audit_precision", "audit_precision"),
            ("audit/<int:pk>/refusal-gap.csv", "audit_refusal_csv", "audit_refusal_csv"),
            ("dataset/<slug:name>/", "dataset_report", "dataset_report"),
            ("dataset/<slug:name>/refusal-gap.csv", "dataset_refusal_csv", "dataset_refusal_csv"),
            (
                "dataset/<slug:name>/recompute/",
                "dataset_report_recompute",
                "dataset_report_recompute",
            ),
        ],
    ),
    *lazy_routes(
        "analysis.compare_views",
        [
            ("audit/<int:pk>/compare/", "audit_compare", "audit_compare"),
            ("audit/<int:pk>/gate/candidate/", "audit_gate_candidate", "audit_gate_candidate"),
            ("dataset/<slug:name>/compare/", "dataset_compare", "dataset_compare"),
        ],
    ),
    *lazy_routes(
        "analysis.instrument_views",
        [
            (
                "audit/<int:pk>/refusal-instrument/",
                "audit_refusal_instrument",
                "audit_refusal_instrument",
            ),
            (
                "dataset/<slug:name>/refusal-instrument/",
                "dataset_refusal_instrument",
                "dataset_refusal_instrument",
            ),
        ],
    ),
]
