from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from config.lazy import lazy_view

# The report pages need pandas and scipy: their modules load on the first request to one of
# them, not with the URLconf, so a web process that serves only annotators never loads them.

urlpatterns: list[URLPattern | URLResolver] = [
    path("", lazy_view("analysis.views.report_index"), name="report_index"),
    path("audit/<int:pk>/", lazy_view("analysis.views.audit_report"), name="audit_report"),
    path(
        "audit/<int:pk>/recompute/",
        lazy_view("analysis.views.audit_report_recompute"),
        name="audit_report_recompute",
    ),
    path("audit/<int:pk>/gate/", lazy_view("analysis.views.audit_gate"), name="audit_gate"),
    path(
        "audit/<int:pk>/compare/",
        lazy_view("analysis.compare_views.audit_compare"),
        name="audit_compare",
    ),
    path(
        "audit/<int:pk>/gate/candidate/",
        lazy_view("analysis.compare_views.audit_gate_candidate"),
        name="audit_gate_candidate",
    ),
    path(
        "dataset/<slug:name>/compare/",
        lazy_view("analysis.compare_views.dataset_compare"),
        name="dataset_compare",
    ),
    path(
        "audit/<int:pk>/precision/",
        lazy_view("analysis.views.audit_precision"),
        name="audit_precision",
    ),
    path(
        "audit/<int:pk>/refusal-gap.csv",
        lazy_view("analysis.views.audit_refusal_csv"),
        name="audit_refusal_csv",
    ),
    path(
        "audit/<int:pk>/refusal-instrument/",
        lazy_view("analysis.instrument_views.audit_refusal_instrument"),
        name="audit_refusal_instrument",
    ),
    path(
        "dataset/<slug:name>/refusal-instrument/",
        lazy_view("analysis.instrument_views.dataset_refusal_instrument"),
        name="dataset_refusal_instrument",
    ),
    path("dataset/<slug:name>/", lazy_view("analysis.views.dataset_report"), name="dataset_report"),
    path(
        "dataset/<slug:name>/refusal-gap.csv",
        lazy_view("analysis.views.dataset_refusal_csv"),
        name="dataset_refusal_csv",
    ),
    path(
        "dataset/<slug:name>/recompute/",
        lazy_view("analysis.views.dataset_report_recompute"),
        name="dataset_report_recompute",
    ),
]
