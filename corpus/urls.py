from __future__ import annotations

from django.urls import path

from corpus import views

urlpatterns = [
    path("datasets/", views.dataset_list, name="dataset_list"),
    path("datasets/<slug:name>/", views.dataset_detail, name="dataset_detail"),
]
