from __future__ import annotations

from django.urls import include, path

from annotation import item_views, views

# The pages of one audit, below audits/<int:pk>/ (the names are the views' own).
audit_pages = [
    path("", views.audit_detail, name="audit_detail"),
    path("annotators/", views.audit_annotators, name="audit_annotators"),
    path("status/", views.audit_status, name="audit_status"),
    path("items/", item_views.audit_items_list, name="audit_items"),
    path("judge-runs/", views.audit_judge_run, name="audit_judge_run"),
    path("rejudge/", views.audit_rejudge, name="audit_rejudge"),
    path("grow/", views.audit_grow, name="audit_grow"),
    path("overlap/", views.audit_overlap, name="audit_overlap"),
    path("options/", views.audit_options, name="audit_options"),
    path("gold/", views.audit_gold, name="audit_gold"),
    path("gold/<int:item_id>/remove/", views.audit_gold_remove, name="audit_gold_remove"),
    path(
        "annotators/<int:user_id>/set-aside/",
        views.annotator_set_aside,
        name="annotator_set_aside",
    ),
    path("label/", views.workspace, name="workspace"),
    path("label/<int:assignment_id>/", views.label_submit, name="label_submit"),
    path("label/<int:assignment_id>/skip/", views.item_skip, name="item_skip"),
    path("undo/", views.label_undo, name="label_undo"),
    path("mine/", views.my_labels, name="my_labels"),
    path("mine/<int:label_id>/", views.label_revise, name="label_revise"),
    path("adjudicate/", views.adjudication_queue, name="adjudication_queue"),
    path("adjudicate/<int:item_id>/", views.adjudication_item, name="adjudication_item"),
    path("adjudicate/<int:item_id>/classes/", views.class_adjudicate, name="class_adjudicate"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("audits/", views.audit_list, name="audit_list"),
    path("audits/new/", views.audit_create, name="audit_create"),
    path("audits/new/availability/", views.audit_availability, name="audit_availability"),
    path("audits/<int:pk>/", include(audit_pages)),
]
