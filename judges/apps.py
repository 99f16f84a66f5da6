from __future__ import annotations

from django.apps import AppConfig


class JudgesConfig(AppConfig):
    name = "judges"
    verbose_name = "Judges and verdicts"

    def ready(self) -> None:
        # Imported files carry verdicts; the datasets app's writer takes them through this
        # part, as it may not import judges (datasets come first in the flow).
        from datasets.importers.writer import row_part_register
        from judges.importing import VerdictPart

        row_part_register(VerdictPart)
