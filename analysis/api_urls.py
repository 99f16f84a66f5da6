"""The report API's URLs (mounted under /api/; the views are analysis/api.py).

Loaded on first use (config.lazy): the views read snapshots through pandas, and this module is
part of the URLconf every web process loads, annotators' requests included.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

from analysis.routes import subject_routes
from config.lazy import lazy_routes

urlpatterns: list[URLPattern | URLResolver] = [
    *lazy_routes(
        "analysis.api",
        [
            ("audits/<int:pk>/gate/", "audit_gate", "api-audit-gate"),
            ("audits/<int:pk>/gate/check/", "audit_gate_check", "api-audit-gate-check"),
            *subject_routes(
                [
                    ("compare/", "compare"),
                    ("report/", "report"),
                    ("report/model/", "report_model"),
                    ("report/history/", "report_history"),
                    ("report/recompute/", "report_recompute"),
                ],
                api=True,
            ),
        ],
    )
]
