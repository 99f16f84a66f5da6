"""Calibration-set downloads (a report page link and the API endpoint).

Include at the site root, in config/urls.py: `path("", include("analysis.export_urls"))`.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

from config.lazy import lazy_routes

# Loaded on first use (config.lazy): the exports need pandas and pyarrow.

urlpatterns: list[URLPattern | URLResolver] = [
    *lazy_routes(
        "analysis.export_views",
        [
            (
                "^reports/audit/(?P<pk>[0-9]+)/export\\.(?P<fmt>jsonl|csv|parquet)$",
                "audit_export",
                "audit_export",
            ),
            ("reports/audit/<int:pk>/export/", "audit_export_download", "audit_export_download"),
            (
                "reports/audit/<int:pk>/export/manifest.json",
                "audit_export_manifest",
                "audit_export_manifest",
            ),
            ("api/audits/<int:pk>/export/", "AuditExportApi", "api-audit-export"),
            ("api/exports/", "ExportsApi", "api-exports"),
            (
                "^reports/audit/(?P<pk>[0-9]+)/model-card\\.(?P<fmt>md|json)$",
                "audit_model_card",
                "audit_model_card",
            ),
            ("api/audits/<int:pk>/model-card/", "AuditModelCardApi", "api-audit-model-card"),
            (
                "^reports/dataset/(?P<name>[-a-zA-Z0-9_]+)/flags\\.(?P<fmt>jsonl|parquet)$",
                "dataset_flags",
                "dataset_flags",
            ),
            ("api/datasets/<slug:name>/flags/", "DatasetFlagsApi", "api-dataset-flags"),
            ("api/exports/manifest/", "ExportManifestApi", "api-exports-manifest"),
        ],
    )
]
