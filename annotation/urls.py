from __future__ import annotations

from django.urls import path

from annotation import views

urlpatterns = [
    path("", views.home, name="home"),
    path("datasets/", views.dataset_list, name="dataset_list"),
    path("datasets/<slug:name>/", views.dataset_detail, name="dataset_detail"),
]
