"""The approval behind an audit event, for the event's page: the plan voted on (its
changes, details and hash), the exact redacted params, who asked and why, and every
vote — read-only, for auditors too, who may not open the approval pages themselves."""

from __future__ import annotations

import json

from apps.core.redact import redact_text

from . import plans
from .models import ApprovalRequest


def approval_panel(event, actor):
    if not event.approval_id.isdigit():
        return None
    approval = ApprovalRequest.objects.filter(pk=int(event.approval_id)).select_related("requested_by").first()
    if approval is None:
        return None
    votes = [{"vote": v, "comment": redact_text(v.comment)} for v in approval.votes.select_related("voter")]
    return "approvals/_audit_panel.html", {
        "approval": approval,
        "reason": redact_text(approval.reason),
        "summary": approval.plan.get("summary", ""),
        "changes": plans.changes(approval.plan),
        "details": plans.details(approval.plan),
        "drift": plans.drift(approval.plan, approval.drifted_plan) if approval.drifted_plan is not None else [],
        "params_json": json.dumps(approval.params_redacted, indent=2, sort_keys=True, ensure_ascii=False),
        "votes": votes,
        "may_open": actor.has_perm("core.run_read_ops"),
    }
