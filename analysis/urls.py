from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from analysis import compare_views, instrument_views, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.report_index, name="report_index"),
    path("audit/<int:pk>/", views.audit_report, name="audit_report"),
    path("audit/<int:pk>/recompute/", views.audit_report_recompute, name="audit_report_recompute"),
    path("audit/<int:pk>/gate/", views.audit_gate, name="audit_gate"),
    path("audit/<int:pk>/compare/", compare_views.audit_compare, name="audit_compare"),
    path(
        "audit/<int:pk>/gate/candidate/",
        compare_views.audit_gate_candidate,
        name="audit_gate_candidate",
    ),
    path("dataset/<slug:name>/compare/", compare_views.dataset_compare, name="dataset_compare"),
    path("audit/<int:pk>/precision/", views.audit_precision, name="audit_precision"),
    path("audit/<int:pk>/refusal-gap.csv", views.audit_refusal_csv, name="audit_refusal_csv"),
    path(
        "audit/<int:pk>/refusal-instrument/",
        instrument_views.audit_refusal_instrument,
        name="audit_refusal_instrument",
    ),
    path(
        "dataset/<slug:name>/refusal-instrument/",
        instrument_views.dataset_refusal_instrument,
        name="dataset_refusal_instrument",
    ),
    path("dataset/<slug:name>/", views.dataset_report, name="dataset_report"),
    path(
        "dataset/<slug:name>/refusal-gap.csv",
        views.dataset_refusal_csv,
        name="dataset_refusal_csv",
    ),
    path(
        "dataset/<slug:name>/recompute/",
        views.dataset_report_recompute,
        name="dataset_report_recompute",
    ),
]
