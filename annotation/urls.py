from __future__ import annotations

from django.urls import path

from annotation import item_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("audits/", views.audit_list, name="audit_list"),
    path("audits/new/", views.audit_create, name="audit_create"),
    path("audits/new/availability/", views.audit_availability, name="audit_availability"),
    path("audits/<int:pk>/", views.audit_detail, name="audit_detail"),
    path("audits/<int:pk>/annotators/", views.audit_annotators, name="audit_annotators"),
    path("audits/<int:pk>/status/", views.audit_status, name="audit_status"),
    path("audits/<int:pk>/items/", item_views.audit_items_list, name="audit_items"),
    path("audits/<int:pk>/judge-runs/", views.audit_judge_run, name="audit_judge_run"),
    path("audits/<int:pk>/rejudge/", views.audit_rejudge, name="audit_rejudge"),
    path("audits/<int:pk>/grow/", views.audit_grow, name="audit_grow"),
    path("audits/<int:pk>/overlap/", views.audit_overlap, name="audit_overlap"),
    path("audits/<int:pk>/options/", views.audit_options, name="audit_options"),
    path("audits/<int:pk>/gold/", views.audit_gold, name="audit_gold"),
    path(
        "audits/<int:pk>/gold/<int:item_id>/remove/",
        views.audit_gold_remove,
        name="audit_gold_remove",
    ),
    path(
        "audits/<int:pk>/annotators/<int:user_id>/set-aside/",
        views.annotator_set_aside,
        name="annotator_set_aside",
    ),
    path("audits/<int:pk>/label/", views.workspace, name="workspace"),
    path("audits/<int:pk>/label/<int:assignment_id>/", views.label_submit, name="label_submit"),
    path("audits/<int:pk>/label/<int:assignment_id>/skip/", views.item_skip, name="item_skip"),
    path("audits/<int:pk>/undo/", views.label_undo, name="label_undo"),
    path("audits/<int:pk>/mine/", views.my_labels, name="my_labels"),
    path("audits/<int:pk>/mine/<int:label_id>/", views.label_revise, name="label_revise"),
    path("audits/<int:pk>/adjudicate/", views.adjudication_queue, name="adjudication_queue"),
    path(
        "audits/<int:pk>/adjudicate/<int:item_id>/",
        views.adjudication_item,
        name="adjudication_item",
    ),
    path(
        "audits/<int:pk>/adjudicate/<int:item_id>/classes/",
        views.class_adjudicate,
        name="class_adjudicate",
    ),
]
