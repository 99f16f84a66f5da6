from __future__ import annotations

from django.apps import AppConfig


class JudgesConfig(AppConfig):
    name = "judges"
    verbose_name = "Judges and verdicts"

    def ready(self) -> None:
        # Imported files carry verdicts; the corpus app's writer takes them through this
        # part, as it may not import judges (the corpus comes first in the flow).
        from corpus.importers.writer import row_part_register
        from judges.importing import VerdictPart

        row_part_register(VerdictPart)
