"""An audit's item list (leads only): state, labels and adjudication of every item, filtered
by state, 50 a page; each row links to the pair's page in the data browser."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation import audit_items, selectors


@login_required
def audit_items_list(request: HttpRequest, pk: int) -> HttpResponse:
    audit = selectors.audit_for_lead(request.user, pk)
    rows = audit_items.audit_item_rows(audit)
    state = request.GET.get("state", "")
    error = ""
    if state and state not in audit_items.STATES:
        error = (
            f"state: {state!r} is not one of {', '.join(audit_items.STATES)}; showing every item."
        )
        state = ""
    shown = [row for row in rows if row.state == state] if state else rows
    page = Paginator(shown, audit_items.PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "audit": audit,
        "page": page,
        "state": state,
        "error": error,
        "states": audit_items.state_counts(rows),
        "total": len(rows),
    }
    return render(request, "annotation/audit_items.html", context)
