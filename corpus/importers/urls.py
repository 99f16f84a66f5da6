from __future__ import annotations

from django.urls import path

from corpus.importers import views

urlpatterns = [
    path("", views.import_list, name="import_list"),
    path("new/", views.import_new, name="import_new"),
    path("<int:pk>/", views.import_job, name="import_job"),
]
