"""Calibration-set downloads (a report page link and the API endpoint).

Include at the site root, in config/urls.py: `path("", include("analysis.export_urls"))`.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, re_path

from config.lazy import lazy_view

# Loaded on first use (config.lazy): the exports need pandas and pyarrow.

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(
        r"^reports/audit/(?P<pk>[0-9]+)/export\.(?P<fmt>jsonl|csv|parquet)$",
        lazy_view("analysis.export_views.audit_export"),
        name="audit_export",
    ),
    path(
        "reports/audit/<int:pk>/export/",
        lazy_view("analysis.export_views.audit_export_download"),
        name="audit_export_download",
    ),
    path(
        "reports/audit/<int:pk>/export/manifest.json",
        lazy_view("analysis.export_views.audit_export_manifest"),
        name="audit_export_manifest",
    ),
    path(
        "api/audits/<int:pk>/export/",
        lazy_view("analysis.export_views.AuditExportApi"),
        name="api-audit-export",
    ),
    path("api/exports/", lazy_view("analysis.export_views.ExportsApi"), name="api-exports"),
    re_path(
        r"^reports/audit/(?P<pk>[0-9]+)/model-card\.(?P<fmt>md|json)$",
        lazy_view("analysis.export_views.audit_model_card"),
        name="audit_model_card",
    ),
    path(
        "api/audits/<int:pk>/model-card/",
        lazy_view("analysis.export_views.AuditModelCardApi"),
        name="api-audit-model-card",
    ),
    re_path(
        r"^reports/dataset/(?P<name>[-a-zA-Z0-9_]+)/flags\.(?P<fmt>jsonl|parquet)$",
        lazy_view("analysis.export_views.dataset_flags"),
        name="dataset_flags",
    ),
    path(
        "api/datasets/<slug:name>/flags/",
        lazy_view("analysis.export_views.DatasetFlagsApi"),
        name="api-dataset-flags",
    ),
    path(
        "api/exports/manifest/",
        lazy_view("analysis.export_views.ExportManifestApi"),
        name="api-exports-manifest",
    ),
]
