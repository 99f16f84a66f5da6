"""Pure judge execution: configuration, prompts, parsing, HTTP client and runner.

No Django import anywhere in this package; `judges.services` and `judges.tasks` wire it to
the models and to Celery.
"""
