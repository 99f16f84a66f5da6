"""What annotators must never see: model names, judges, verdicts and other people's labels.

`add_secrets` plants them in an audit under names that cannot occur by chance; `assert_blind`
checks that none of them (nor any given besides) is in what an annotator was shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from annotation.models import Audit
from judges.models import Judge
from tests.factories import JudgeFactory, VerdictFactory

OTHER_RATIONALE = "OTHER-RATIONALE"  # the rationale the other annotator gives
SECRETS = (
    "secret-model-alpha",
    "secret-model-beta",
    "judge-zeta",
    "judge-model-omega",
    "VERDICT-RAW-OUTPUT",
    OTHER_RATIONALE,
)


def add_secrets(audit: Audit, **verdict: Any) -> Judge:
    """Name the models of every pair of ``audit`` and give each a verdict of a judge of the
    audit (``verdict``: the verdicts' other fields); returns the judge."""
    judge: Judge = JudgeFactory(name="judge-zeta", model_id="judge-model-omega")
    audit.judges.add(judge)
    for item in audit.items.select_related("pair__response_a", "pair__response_b"):
        item.pair.response_a.model_name = "secret-model-alpha"
        item.pair.response_a.save()
        item.pair.response_b.model_name = "secret-model-beta"
        item.pair.response_b.save()
        VerdictFactory(judge=judge, pair=item.pair, raw_ab="VERDICT-RAW-OUTPUT", **verdict)
    return judge


def assert_blind(text: str, other_annotator: User, *more: str) -> None:
    for secret in (*SECRETS, other_annotator.username, *more):
        assert secret not in text, secret
