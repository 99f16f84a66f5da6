"""Seed the demo: real PandaLM pairs with their human votes and both judges' verdicts, a lead and
two annotators, and an audit that is part-way labelled (with PandaLM's own annotators' votes),
so every page has something true to show. The responses of PandaLM and of Anthropic's hh-rlhf
harmless-base test set (human preferences between refusals and compliance) are classified by
the default refusal classifier, so the refusal-gap sections have real classes; the offline Gemma
3 270M judge's shipped verdicts on hh-rlhf refusal-versus-compliance pairs (judges/data/gemma/)
are imported after those pairs, so hh-rlhf's refusal gap is a number with no model running; the
demo audit gets a release gate and both Gemma versions, so its comparison page shows a real
version change (docs/judge-lifecycle.md). Safe to run again: imports de-duplicate,
classification skips what is done, the audit and its gate are made once, and fresh passwords
are printed each time.
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count
from django.utils import timezone

from analysis.gates import gate_evaluate, gate_latest, gate_set
from analysis.services import snapshot_compute
from annotation import queue, sampling, selectors, services
from annotation.models import Audit
from config.roles import ensure_groups
from corpus.importers.services import dataset_for_import, import_file
from corpus.models import HumanVote, ImportJob, Pair
from judges.class_files import classes_load
from judges.classification import classification_run_create, classification_run_execute
from judges.core.config import JudgeConfig
from judges.gemma_verdicts import DATA_DIR as GEMMA_DIR
from judges.models import Judge
from judges.services import judge_version_get_or_create

DATA = Path(settings.BASE_DIR).parent / "shared" / "data"
PANDALM_FILES = ["testset-v1.json", "gpt-3.5-turbo-testset-v1.json", "pandalm-7b-testset-v1.json"]
HH_RLHF_FILE = "harmless-base-test.jsonl.gz"
# The offline Gemma 3 270M judge's verdicts, shipped in the repository (judges/data/gemma/):
# imported after the pairs they name, so the hh-rlhf report has a judge beside the people's
# votes on refusal-versus-compliance pairs and its refusal gap is a number; no model runs.
# PandaLM: the judge in two versions that differ by one prompt sentence, v1 first.
GEMMA_VERDICTS = {
    "pandalm": ["pandalm-v1.jsonl", "pandalm-v2.jsonl"],
    "hh-rlhf": ["hh-rlhf-refusal-gap.jsonl"],
}
# The classes and features of the demo's responses, written by `response_classes export` with
# the shipped classifier: loaded where this machine's classifier has the same fingerprints, so
# a first demo embeds nothing (tests/judges/test_class_files.py classifies a sample again).
CLASSES_DIR = Path(settings.BASE_DIR) / "judges" / "data" / "classes"
GEMMA_JUDGE = "gemma-3-270m"  # not drawn on when sampling; joins the audit as v1 and v2 after
AUDIT_NAME = "PandaLM demo audit"
GATE_JUDGE = "gpt-3.5-turbo"  # the gate is about the judge imported under this name
# A drift rule checked for the Gemma judge's v2 against its v1 on the demo audit (printed, not
# stored: the gate in force stays the GPT-3.5 one above, and a stored drift rule about a judge
# with no earlier version would leave it INCONCLUSIVE).
DRIFT_RULES = ["flip_rate <= 0.35"]
# A second audit about the Gemma judge's prompt change, with its gate pinned to v2 and the drift
# rules against v1, so the comparison page shows a drift gate in force. Its items are every pair
# of the low-margin stratum (inclusion probability 1): with the two Gemma versions as the audit's
# judges that stratum is the pairs they judged (Gemma 270M always picks the first answer, so
# each of its verdicts is swap-inconsistent), and a census keeps the flip rate unweighted.
DRIFT_AUDIT_NAME = "Gemma prompt v2 check"
GATE_RULES = [
    "lower(cohen_kappa) >= 0.4 on each slice with n >= 30",
    "lower(percent_agreement) >= 0.6",
    "interval(refusal_gap.ethical_refusal) excludes above 0.10",
]
AUDIT_SIZE = 100
PRELABELLED = 60  # items each demo annotator has already labelled (with real PandaLM votes)


class Command(BaseCommand):
    help = "Seed the demo: PandaLM data, a lead, two annotators and a part-labelled audit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", type=Path, default=DATA, help="the shared/data folder")
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="where the demo will be served"
        )
        parser.add_argument(
            "--only",
            choices=["hh-rlhf"],
            help="seed only this dataset (hh-rlhf: its pairs, the Gemma judge's verdicts, the "
            "response classes and the report) and a lead: what the refusal-gap screenshot "
            "needs, in a fraction of the time",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data: Path = options["data"]
        if not (data / "pandalm").is_dir():
            raise CommandError(f"{data / 'pandalm'}: not found; pass --data PATH/TO/shared/data")
        lead_group, annotator_group = ensure_groups()
        if options["only"] == "hh-rlhf":
            hh_rlhf = self._hh_rlhf(data)
            self._classify(hh_rlhf)
            snapshot_compute(dataset=hh_rlhf)
            self._ready(options["url"], {"lead": self._user("lead", lead_group)})
            return
        logins = {
            "lead": self._user("lead", lead_group),
            "annotator1": self._user("annotator1", annotator_group),
            "annotator2": self._user("annotator2", annotator_group),
        }
        dataset = dataset_for_import(name="pandalm")
        if not dataset.description:
            dataset.description = (
                "PandaLM test set (WeOpenML/PandaLM, Apache-2.0): 999 instruction pairs, three "
                "human annotators each, verdicts of GPT-3.5-turbo and PandaLM-7B."
            )
            dataset.save(update_fields=["description"])
        for name in PANDALM_FILES:
            self._import(dataset, "pandalm", data / "pandalm" / name)
        for name in GEMMA_VERDICTS.get(dataset.name, []):
            self._import_gemma(dataset, GEMMA_DIR / name)
        hh_rlhf = self._hh_rlhf(data)
        for subject in (dataset, hh_rlhf):
            self._classify(subject)

        audit = Audit.objects.filter(name=AUDIT_NAME, dataset=dataset).first()
        if audit is None:
            audit = self._build_audit(dataset, logins)
        self._prelabel(audit)
        self._versions(audit)
        self._gate(audit)
        # Reports open with figures at once: compute the snapshots here rather than in the
        # background threads a short-lived command would not wait for.
        for subject in (dataset, hh_rlhf):
            snapshot_compute(dataset=subject)
        snapshot_compute(audit=audit)
        gate = gate_evaluate(audit=audit).result
        self.stdout.write(f"release gate on the demo audit: {gate.status}: {gate.reason}")
        self._drift(audit)
        self._drift_audit(dataset)

        self._ready(options["url"], logins)

    def _ready(self, url: str, logins: dict[str, str]) -> None:
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Demo ready. Log in at {url} as:"))
        for username, password in logins.items():
            self.stdout.write(f"  {username:<11} password {password}")

    def _hh_rlhf(self, data: Path) -> Any:
        """hh-rlhf's pairs and votes, then the Gemma judge's shipped verdicts on them."""
        hh_rlhf = dataset_for_import(name="hh-rlhf")
        if not hh_rlhf.description:
            hh_rlhf.description = (
                "Anthropic hh-rlhf harmless-base test set (MIT): 2,312 dialogues, a crowdworker "
                "chose the better of two final assistant turns, often a refusal against "
                "compliance."
            )
            hh_rlhf.save(update_fields=["description"])
        self._import(hh_rlhf, "hh-rlhf", data / "hh-rlhf" / HH_RLHF_FILE)
        for name in GEMMA_VERDICTS.get(hh_rlhf.name, []):
            self._import_gemma(hh_rlhf, GEMMA_DIR / name)
        return hh_rlhf

    def _import(self, dataset: Any, fmt: str, path: Path) -> None:
        job = import_file(dataset=dataset, fmt=fmt, path=path)
        if job.status != ImportJob.Status.DONE:
            raise CommandError(f"{path.name}: import failed: {'; '.join(job.errors[:5])}")
        self.stdout.write(f"imported {path.name}: {job.counts}")

    def _import_gemma(self, dataset: Any, path: Path) -> None:
        """A shipped Gemma verdict file, attached to the runnable judge version its
        ``.meta.json`` describes (what ``judge_create --from-json`` makes), so the judge's
        page shows the configuration that produced them, next_token verdict mode included."""
        meta = json.loads(path.with_suffix(".meta.json").read_text(encoding="utf-8"))
        config = JudgeConfig.from_dict(meta["judge_config"])
        if config.fingerprint() != meta["fingerprint"]:
            raise CommandError(
                f"{path.name}.meta.json: judge_config has fingerprint {config.fingerprint()}, "
                f"the file says {meta['fingerprint']}"
            )
        judge_version_get_or_create(config=config, name=meta["judge"])
        self._import(dataset, "generic", path)

    def _classify(self, dataset: Any) -> None:
        """Refusal classes and text features of every response (skips what is done): from the
        shipped file where the fingerprints match, the classifier for the rest."""
        shipped = CLASSES_DIR / f"{dataset.name}.jsonl.gz"
        if shipped.is_file():
            loaded = classes_load(dataset=dataset, path=shipped)
            if loaded.refused:
                self.stdout.write(f"  {loaded.refused}; classifying instead")
            elif loaded.stored:
                self.stdout.write(
                    f"  {dataset.name}: classes and features of {loaded.stored:,} responses "
                    f"from {shipped.name} (same classifier and features fingerprints)"
                )
        run, _ = classification_run_create(dataset=dataset)
        shown = [-1]

        def progress(current: Any) -> None:
            step = max(1, current.total // 10)
            if current.done // step != shown[0]:
                shown[0] = current.done // step
                self.stdout.write(
                    f"  classifying {dataset.name}: {current.done:,} of {current.total:,} responses"
                )

        run = classification_run_execute(run.pk, on_progress=progress)
        if run.status != run.Status.DONE:
            raise CommandError(f"classifying {dataset.name} failed: {run.error}")
        classes = ", ".join(f"{k} {v:,}" for k, v in (run.counts.get("classes") or {}).items())
        self.stdout.write(f"classified {dataset.name}: {classes}")

    def _versions(self, audit: Audit) -> None:
        """Both Gemma versions join the audit's judges (after its items were drawn, so the
        sample is the one the other judges' margins chose): the comparison page then opens on
        v1 against v2 on the labelled pairs they share, as after a re-judge."""
        versions = Judge.objects.filter(name=GEMMA_JUDGE, verdicts__pair__dataset=audit.dataset)
        audit.judges.add(*versions.distinct())

    def _drift(self, audit: Audit) -> None:
        """Gemma v2 against v1 on the audit under the drift rules, as `gate --baseline` checks."""
        versions = list(audit.judges.filter(name=GEMMA_JUDGE).order_by("version"))
        if len(versions) < 2:
            return
        baseline, candidate = versions[-2], versions[-1]
        drift = gate_evaluate(
            audit=audit, rules=DRIFT_RULES, judge=candidate, baseline=baseline, refresh=False
        ).result
        self.stdout.write(
            f"drift check on the demo audit, {candidate} against {baseline} "
            f"({'; '.join(DRIFT_RULES)}): {drift.status}: {drift.reason}"
        )

    def _drift_audit(self, dataset: Any) -> None:
        """The Gemma prompt-change audit and its drift gate (see DRIFT_AUDIT_NAME)."""
        versions = list(
            Judge.objects.filter(name=GEMMA_JUDGE, verdicts__pair__dataset=dataset)
            .distinct()
            .order_by("version")
        )
        if len(versions) < 2:
            return
        lead = get_user_model().objects.get(username="lead")
        audit = Audit.objects.filter(name=DRIFT_AUDIT_NAME, dataset=dataset).first()
        if audit is None:
            signals = selectors.pair_signals(
                dataset=dataset, judges=versions[-2:], margin_threshold=None
            )
            pools = sampling.pools(sampling.partition(signals), drift=False)
            audit = services.audit_build(
                name=DRIFT_AUDIT_NAME,
                dataset=dataset,
                judges=versions[-2:],
                size=pools["low_margin"],
                overlap_k=1,
                quotas={name: 0 for name in pools} | {"low_margin": pools["low_margin"]},
                thresholds={},
                seed=11,
                created_by=lead,
                guidelines="Pick the response that better follows the instruction.",
            )
        if gate_latest(audit) is None:
            gate_set(audit=audit, judge=versions[-1], rules=DRIFT_RULES, created_by=lead)
        snapshot_compute(audit=audit)
        gate = gate_evaluate(audit=audit, refresh=False).result
        self.stdout.write(
            f"drift gate on {DRIFT_AUDIT_NAME!r} ({versions[-1]} against {versions[-2]}; "
            f"{'; '.join(DRIFT_RULES)}): {gate.status}: {gate.reason}"
        )

    def _gate(self, audit: Audit) -> None:
        if gate_latest(audit) is not None:
            return
        judge = (
            Judge.objects.filter(name__startswith=GATE_JUDGE, verdicts__pair__dataset=audit.dataset)
            .order_by("-version")
            .first()
        )
        if judge is None:
            return
        gate_set(
            audit=audit,
            judge=judge,
            rules=GATE_RULES,
            created_by=get_user_model().objects.get(username="lead"),
        )

    def _user(self, username: str, group: Any) -> str:
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=username)
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.save()
        user.groups.add(group)
        return password

    def _build_audit(self, dataset: Any, logins: dict[str, str]) -> Audit:
        user_model = get_user_model()
        judges = list(
            Judge.objects.filter(verdicts__pair__dataset=dataset)
            .exclude(name=GEMMA_JUDGE)
            .annotate(n=Count("verdicts"))
            .order_by("name")
        )
        annotators = list(user_model.objects.filter(username__in=["annotator1", "annotator2"]))
        return services.audit_build(
            name=AUDIT_NAME,
            dataset=dataset,
            judges=judges,
            size=AUDIT_SIZE,
            overlap_k=2,
            quotas={"low_margin": 60, "random": None},
            thresholds={},
            seed=7,
            created_by=user_model.objects.get(username="lead"),
            annotators=annotators,
            guidelines=(
                "Pick the response that better follows the instruction: correct first, then "
                "complete, then clear. Choose tie when neither is better. Keys: 1 left, "
                "2 right, 3 tie."
            ),
        )

    def _prelabel(self, audit: Audit) -> None:
        """Label the first items with the real votes of PandaLM's annotator1 and annotator2."""
        user_model = get_user_model()
        for username, voter in (("annotator1", "annotator1"), ("annotator2", "annotator2")):
            annotator = user_model.objects.get(username=username)
            done = audit.items.filter(labels__annotator=annotator).count()
            while done < PRELABELLED:
                # Served 20 s ago, so the seeded labels carry a plausible time spent.
                served = timezone.now() - timedelta(seconds=20)
                assignment = queue.queue_next(audit=audit, annotator=annotator, now=served)
                if assignment is None:
                    break
                pair: Pair = assignment.item.pair
                vote = (
                    HumanVote.objects.filter(pair=pair, voter_id__endswith=voter)
                    .values_list("outcome", flat=True)
                    .first()
                )
                if vote is None:
                    queue.item_skip(assignment=assignment, reason="no PandaLM vote to seed")
                    continue
                queue.label_submit(
                    assignment=assignment,
                    choice=queue.to_side(vote, a_on_left=assignment.a_on_left),
                    submission_key=uuid.uuid4(),
                    time_spent_ms=20_000,
                    now=timezone.now(),
                )
                done += 1
