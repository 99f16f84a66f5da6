from __future__ import annotations

from django.urls import URLPattern, URLResolver

from analysis.routes import named, subject_routes
from config.lazy import lazy_routes

# The report pages need pandas and scipy: their modules load on the first request to one of
# them, not with the URLconf, so a web process that serves only annotators never loads them.

urlpatterns: list[URLPattern | URLResolver] = [
    *lazy_routes(
        "analysis.views",
        [
            *named(
                ("", "report_index"),
                ("audit/<int:pk>/gate/", "audit_gate"),
                ("audit/<int:pk>/precision/", "audit_precision"),
            ),
            *subject_routes(
                [
                    ("", "report"),
                    ("recompute/", "report_recompute"),
                    ("refusal-gap.csv", "refusal_csv"),
                ]
            ),
        ],
    ),
    *lazy_routes(
        "analysis.compare_views",
        [
            *subject_routes([("compare/", "compare")]),
            *named(("audit/<int:pk>/gate/candidate/", "audit_gate_candidate")),
        ],
    ),
    *lazy_routes(
        "analysis.instrument_views", subject_routes([("refusal-instrument/", "refusal_instrument")])
    ),
]
