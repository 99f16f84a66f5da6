"""`python manage.py gate AUDIT [--judge NAME --rule RULE ...] [--format text|json]`

Checks an audit's release gate against its latest figures (recomputed first when labels came
in since) and exits 0 for PASS, 1 for FAIL and 2 for INCONCLUSIVE, so a CI pipeline can stop
a release on it. Without ``--rule`` the gate stored on the audit is checked; with them, those
rules for ``--judge`` (the newest version of that name on the audit), nothing stored. A usage
error (no such audit, a rule that cannot be read) exits 3.

Drift rules (``flip_rate <= 0.05``, ``lower(delta(cohen_kappa)) >= -0.05``) compare the gate's
judge (the candidate, v2) with ``--baseline`` (v1; default: the newest earlier version of the
same judge name on the audit).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis import gates, selectors
from analysis.metrics.gate import GateRuleError
from analysis.studies import GATE_METRICS
from annotation.models import Audit

USAGE_ERROR = 3


class Command(BaseCommand):
    help = (
        "Check an audit's release gate: exit 0 PASS, 1 FAIL, 2 INCONCLUSIVE (3: usage error). "
        "Metrics rules may name: "
        + ", ".join(GATE_METRICS)
        + ". Drift rules against --baseline (default: the judge's previous version): "
        + ", ".join(gates.DRIFT_METRICS)
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("audit", type=int, metavar="AUDIT", help="audit id")
        parser.add_argument(
            "--rule",
            action="append",
            default=[],
            metavar="RULE",
            help="check this rule instead of the stored gate, e.g. "
            "'lower(cohen_kappa) >= 0.6 on each slice with n >= 30' (repeatable)",
        )
        parser.add_argument(
            "--judge",
            metavar="NAME|ID",
            help="the judge the --rule rules are about: its id, its name as pages show it "
            "(name vN), its bare name (newest version) or a unique beginning of it",
        )
        parser.add_argument(
            "--baseline",
            metavar="NAME|ID",
            help="the judge drift rules compare against (v1; named as --judge is); default: "
            "the newest earlier version of the gate's judge on the audit",
        )
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument(
            "--no-refresh", action="store_true", help="use the latest snapshot even if stale"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        audit = Audit.objects.filter(pk=options["audit"]).first()
        if audit is None:
            raise CommandError(
                f"AUDIT {options['audit']}: no audit with that id", returncode=USAGE_ERROR
            )
        judge = None
        if options["rule"]:
            if not options["judge"]:
                raise CommandError("--rule needs --judge NAME", returncode=USAGE_ERROR)
            try:
                judge = selectors.audit_judge_named(audit, options["judge"])
            except selectors.JudgeNotOnAudit as exc:
                raise CommandError(f"--judge {exc}", returncode=USAGE_ERROR) from None
        baseline = None
        if options["baseline"]:
            try:
                baseline = selectors.audit_judge_named(audit, options["baseline"])
            except selectors.JudgeNotOnAudit as exc:
                raise CommandError(f"--baseline {exc}", returncode=USAGE_ERROR) from None
        try:
            outcome = gates.gate_evaluate(
                audit=audit,
                rules=options["rule"] or None,
                judge=judge,
                refresh=not options["no_refresh"],
                baseline=baseline,
            )
        except (GateRuleError, ValueError) as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from None
        result = outcome.result
        if options["format"] == "json":
            gate = gates.gate_latest(audit) if not options["rule"] else None
            data = gates.gate_json(audit, outcome, gate)
            self.stdout.write(json.dumps(data, indent=2))
        else:
            judge_text = str(outcome.judge) if outcome.judge else "no judge figures"
            self.stdout.write(f"{result.status}: {result.reason}")
            if outcome.baseline is not None:
                judge_text += f" against baseline {outcome.baseline}"
            self.stdout.write(f"audit {audit.pk} · judge {judge_text}")
            for rule in result.rules:
                line = f"  [{rule.status}] {rule.rule.text}: {rule.reason}"
                self.stdout.write(line)
            if result.labels_needed is not None:
                self.stdout.write(f"about {result.labels_needed} more labels to decide")
        raise SystemExit(result.exit_code)
