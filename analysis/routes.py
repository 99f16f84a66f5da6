"""Rows of the analysis URL tables (:func:`config.lazy.lazy_routes`) written once for what
exists twice or in several formats: a page or endpoint for an audit and for a dataset (the
views :func:`analysis.subject_views.subject_views` makes, ``audit_<stem>`` and
``dataset_<stem>``), and a file download whose format is the name's extension.

Imports nothing but the standard library: the URL modules are read by every web process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Route = tuple[str, str, str]  # (route, view in the module, URL name)

PAGES = {"audit": "audit/<int:pk>/", "dataset": "dataset/<slug:name>/"}
API = {"audit": "audits/<int:pk>/", "dataset": "datasets/<slug:name>/"}
# The same subjects as regular expressions, for a route whose end is a choice of formats.
REPORT_FILES = {
    "audit": "reports/audit/(?P<pk>[0-9]+)/",
    "dataset": "reports/dataset/(?P<name>[-a-zA-Z0-9_]+)/",
}


def named(*routes: tuple[str, str]) -> list[Route]:
    """(route, view) rows whose URL name is the view's name."""
    return [(route, view, view) for route, view in routes]


def subject_routes(rows: Iterable[tuple[str, str]], *, api: bool = False) -> list[Route]:
    """For each (path after the subject, view stem) the audit's row, then the dataset's: pages
    named as their views (``audit_report``), API endpoints ``api-audit-report-model`` for the
    stem ``report_model``."""
    out: list[Route] = []
    for suffix, stem in rows:
        for subject, prefix in (API if api else PAGES).items():
            view = f"{subject}_{stem}"
            name = f"api-{subject}-{stem.replace('_', '-')}" if api else view
            out.append((prefix + suffix, view, name))
    return out


def file_route(subject: str, stem: str, formats: Sequence[str], view: str) -> Route:
    """``reports/<subject>/<id>/<stem>.<format>`` for each of ``formats`` (the view's ``fmt``
    argument), named as the view."""
    route = f"^{REPORT_FILES[subject]}{stem}\\.(?P<fmt>{'|'.join(formats)})$"
    return (route, view, view)
