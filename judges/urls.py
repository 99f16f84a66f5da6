from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from judges import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.judge_list, name="judge_list"),
    path("new/", views.judge_create, name="judge_create"),
    path("<int:pk>/", views.judge_detail, name="judge_detail"),
    path("runs/start/", views.judge_run_start, name="judge_run_start"),
    path("runs/<int:pk>/", views.judge_run_detail, name="judge_run_detail"),
    path("runs/<int:pk>/stop/", views.judge_run_stop, name="judge_run_stop"),
    path("cards/", views.judge_cards, name="judge_cards"),
    path("datasets/<slug:name>/", views.dataset_judging, name="dataset_judging"),
    path("datasets/<slug:name>/families/", views.dataset_families, name="dataset_families"),
    path(
        "datasets/<slug:name>/classify/",
        views.classification_run_start,
        name="classification_run_start",
    ),
    path(
        "classifications/<int:pk>/",
        views.classification_run_detail,
        name="classification_run_detail",
    ),
]
