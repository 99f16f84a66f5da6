"""Build an audit from the command line (the same service as the page and the API).

    manage.py audit_build --dataset pandalm --judge gpt4o-judge --size 200 --k 2 \\
        --quota ethics_refusal=40 --quota technical_refusal=20 --quota low_margin=80 \\
        --margin 0.5 --seed 7 --annotator ana --annotator otto --created-by lena --name "May"

With --drift BEFORE AFTER and --quota drift=N it draws N of the pairs whose verdict differs
between two judge versions. With --dry-run it prints the pairs available per stratum and
creates nothing.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation import sampling, selectors, services
from corpus.models import Dataset
from judges.models import Judge


def _judge(spec: str) -> Judge:
    """A judge by id, by name (latest version) or by name:version."""
    if spec.isdigit():
        judge = Judge.objects.filter(pk=int(spec)).first()
    elif ":" in spec:
        name, _, version = spec.rpartition(":")
        if not version.isdigit():
            raise CommandError(f"--judge {spec}: version {version!r} is not a number")
        judge = Judge.objects.filter(name=name, version=int(version)).first()
    else:
        judge = Judge.objects.filter(name=spec).order_by("-version").first()
    if judge is None:
        raise CommandError(f"--judge {spec}: no such judge")
    return judge


def _quota(spec: str) -> tuple[str, int]:
    name, sep, value = spec.partition("=")
    if not sep or name not in sampling.ALL_STRATA:
        strata = ", ".join(sampling.ALL_STRATA)
        raise CommandError(f"--quota {spec}: expected STRATUM=N with STRATUM one of {strata}")
    try:
        number = int(value)
    except ValueError as exc:
        raise CommandError(f"--quota {spec}: {value!r} is not a whole number") from exc
    if number < 0:
        raise CommandError(f"--quota {spec}: must not be negative")
    return name, number


class Command(BaseCommand):
    help = "Select a stratified sample of a dataset's pairs into a new audit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True, help="dataset name")
        parser.add_argument("--judge", action="append", default=[], help="id, name or name:version")
        parser.add_argument("--name", default="", help="audit name (default: dataset and seed)")
        parser.add_argument(
            "--drift",
            nargs=2,
            metavar=("BEFORE", "AFTER"),
            default=None,
            help="two judge versions (id, name or name:version): the drift stratum holds the "
            "pairs whose verdict differs between them (give it --quota drift=N)",
        )
        parser.add_argument("--size", type=int, default=200)
        parser.add_argument("--k", type=int, default=2, help="annotators per item")
        parser.add_argument("--quota", action="append", default=[], help="STRATUM=N")
        parser.add_argument("--margin", type=float, default=None, help="low-margin threshold")
        parser.add_argument("--classifier", default=None, help="refusal classifier fingerprint")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--annotator", action="append", default=[], help="username")
        parser.add_argument(
            "--created-by", default=None, help="lead username (default: first superuser)"
        )
        parser.add_argument("--allow-both-bad", action="store_true")
        parser.add_argument("--allow-strength", action="store_true")
        parser.add_argument("--criteria", default="", help="comma-separated criterion names")
        parser.add_argument("--guidelines-file", default=None)
        parser.add_argument("--hold-seconds", type=int, default=None)
        parser.add_argument(
            "--queue-policy",
            choices=["complete_first", "spread_first"],
            default="complete_first",
            help="serving order: complete items first (default) or spread labels first",
        )
        parser.add_argument(
            "--blind-adjudication",
            action="store_true",
            help="adjudicate without model names, judge verdicts or who chose what",
        )
        parser.add_argument(
            "--ask-response-classes",
            action="store_true",
            help="annotators also say what each response did (answered, refused, caveat)",
        )
        parser.add_argument("--dry-run", action="store_true", help="print pool sizes only")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = Dataset.objects.filter(name=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"--dataset {options['dataset']}: no such dataset")
        judges = [_judge(spec) for spec in options["judge"]]
        quotas = dict(_quota(spec) for spec in options["quota"])
        drift = [_judge(spec) for spec in options["drift"] or []]
        if len(drift) == 2 and drift[0].pk == drift[1].pk:
            raise CommandError("--drift: give two different judge versions")
        available = selectors.stratum_availability(
            dataset=dataset,
            judges=judges,
            margin_threshold=options["margin"],
            classifier=options["classifier"],
            drift=drift,
        )
        for name in sampling.ALL_STRATA:
            if name in available:
                self.stdout.write(f"{name:<18} {available[name]:>9,} pairs available")
        if options["dry_run"]:
            return

        User = get_user_model()
        if options["created_by"]:
            lead = User.objects.filter(username=options["created_by"]).first()
            if lead is None:
                raise CommandError(f"--created-by {options['created_by']}: no such user")
        else:
            lead = User.objects.filter(is_superuser=True).order_by("pk").first()
            if lead is None:
                raise CommandError("--created-by is required when there is no superuser")
        annotators = []
        for username in options["annotator"]:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"--annotator {username}: no such user")
            annotators.append(user)
        guidelines = ""
        if options["guidelines_file"]:
            try:
                with open(options["guidelines_file"], encoding="utf-8") as handle:
                    guidelines = handle.read()
            except OSError as exc:
                raise CommandError(f"--guidelines-file: {exc}") from exc
        seed = options["seed"] if options["seed"] is not None else secrets.randbelow(1_000_000)
        try:
            audit = services.audit_build(
                name=options["name"] or f"{dataset.name} audit (seed {seed})",
                dataset=dataset,
                judges=judges,
                size=options["size"],
                overlap_k=options["k"],
                quotas=quotas,
                thresholds={"margin": options["margin"]},
                seed=seed,
                created_by=lead,
                annotators=annotators,
                guidelines=guidelines,
                allow_both_bad=options["allow_both_bad"],
                allow_strength=options["allow_strength"],
                criteria=options["criteria"].split(","),
                hold_seconds=options["hold_seconds"],
                classifier=options["classifier"],
                queue_policy=options["queue_policy"],
                blind_adjudication=options["blind_adjudication"],
                ask_response_classes=options["ask_response_classes"],
                drift_judges=drift,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
            )
            raise CommandError(problems) from exc
        counts = audit.selection["quotas"]
        self.stdout.write(
            self.style.SUCCESS(
                f"audit {audit.pk} “{audit.name}”: {audit.target_size} items, k={audit.overlap_k}, "
                f"seed {seed} ("
                + ", ".join(
                    f"{name} {counts[name]}" for name in sampling.ALL_STRATA if name in counts
                )
                + ")"
            )
        )
