from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config.throttles import LimitedLoginView

urlpatterns = [
    path("accounts/login/", LimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("analysis.export_urls")),
    path("", include("analysis.browse_urls")),
    path("api/", include("config.api_urls")),
    path("imports/", include("corpus.importers.urls")),
    path("judges/", include("judges.urls")),
    path("reports/", include("analysis.urls")),
    path("", include("corpus.urls")),
    path("", include("annotation.urls")),
]
