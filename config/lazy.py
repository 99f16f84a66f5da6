"""Views imported on their first request, so a URL module does not load what its views need.

Django imports every view module when it loads the URLconf. The report views need pandas,
scipy and pyarrow (about 190 MB per web process); an annotator never calls them. A URL module
names such views by dotted path (`lazy_view("analysis.views.audit_report")`) and the module is
imported by the first request that reaches one of them (or by anything that looks into the
view, such as the OpenAPI schema generator), once per process.

Until then the view answers only to its name: `__module__`, `__name__` and `__qualname__`
are the target's, so `reverse()`, URL checks and resolver matches read the same dotted path
as for the view itself. Any other attribute (DRF's `cls`, `csrf_exempt`, ...) is the loaded
view's. A class is turned into a view with `as_view()`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from importlib import import_module
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, re_path

# Read by Django's URL resolver before any request (URLPattern.lookup_str): answered without
# importing, as if the view were a plain function. ResolverMatch reads it too and then falls
# back on __module__ and __name__, which give the same path.
_NOT_BEFORE_LOAD = frozenset({"view_class"})


class LazyView:
    """A view named by its dotted path; the module is imported on first use."""

    def __init__(self, dotted: str) -> None:
        module, _, name = dotted.rpartition(".")
        if not module or not name:
            raise ValueError(f"{dotted!r} is not a dotted path to a view")
        self.__module__ = module
        self.__name__ = name
        self.__qualname__ = name
        self._view: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._view is not None

    def _load(self) -> Any:
        if self._view is None:
            with self._lock:
                if self._view is None:
                    target = getattr(import_module(self.__module__), self.__name__)
                    as_view = getattr(target, "as_view", None) if isinstance(target, type) else None
                    self._view = as_view() if as_view is not None else target
        return self._view

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._load()(request, *args, **kwargs)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        # Only called for what the instance lacks: the loaded view's attributes.
        if name.startswith("__") or name in ("_view", "_lock"):
            raise AttributeError(name)  # not a view's: copies, pickling, a half-built object
        if name in _NOT_BEFORE_LOAD and self._view is None:
            raise AttributeError(name)
        return getattr(self._load(), name)

    def __repr__(self) -> str:
        return f"<LazyView {self.__module__}.{self.__name__}>"


def lazy_view(dotted: str) -> LazyView:
    """The view at `dotted` ("app.module.view" or "app.module.ViewClass"), loaded on first use."""
    return LazyView(dotted)


def lazy_routes(module: str, routes: Iterable[tuple[str, str, str]]) -> list[URLPattern]:
    """URL patterns from a table of (route, view in `module`, name): each view loaded on first
    use. A route starting with `^` is a regular expression (`re_path`), else a `path`."""
    return [
        (re_path if route.startswith("^") else path)(
            route, lazy_view(f"{module}.{view}"), name=name
        )
        for route, view, name in routes
    ]
