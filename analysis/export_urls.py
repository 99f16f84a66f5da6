"""Calibration-set downloads (a report page link and the API endpoint).

Include at the site root, in config/urls.py: `path("", include("analysis.export_urls"))`.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, re_path

from analysis import export_views

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(
        r"^reports/audit/(?P<pk>[0-9]+)/export\.(?P<fmt>jsonl|csv|parquet)$",
        export_views.audit_export,
        name="audit_export",
    ),
    path(
        "reports/audit/<int:pk>/export/",
        export_views.audit_export_download,
        name="audit_export_download",
    ),
    path(
        "reports/audit/<int:pk>/export/manifest.json",
        export_views.audit_export_manifest,
        name="audit_export_manifest",
    ),
    path(
        "api/audits/<int:pk>/export/",
        export_views.AuditExportApi.as_view(),
        name="api-audit-export",
    ),
    path("api/exports/", export_views.ExportsApi.as_view(), name="api-exports"),
    re_path(
        r"^reports/audit/(?P<pk>[0-9]+)/model-card\.(?P<fmt>md|json)$",
        export_views.audit_model_card,
        name="audit_model_card",
    ),
    path(
        "api/audits/<int:pk>/model-card/",
        export_views.AuditModelCardApi.as_view(),
        name="api-audit-model-card",
    ),
    re_path(
        r"^reports/dataset/(?P<name>[-a-zA-Z0-9_]+)/flags\.(?P<fmt>jsonl|parquet)$",
        export_views.dataset_flags,
        name="dataset_flags",
    ),
    path(
        "api/datasets/<slug:name>/flags/",
        export_views.DatasetFlagsApi.as_view(),
        name="api-dataset-flags",
    ),
    path(
        "api/exports/manifest/",
        export_views.ExportManifestApi.as_view(),
        name="api-exports-manifest",
    ),
]
