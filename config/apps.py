from __future__ import annotations

from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project level as an app: it has no models, only the commands that span the apps
    (`seed_demo`, `run_judge`); the apps below may not import each other upward, this may."""

    name = "config"
    verbose_name = "Tribunal"

    def ready(self) -> None:
        from config.throttles import signals_connect

        signals_connect()  # failed logins are counted (web and API token alike)
