"""The operators' dashboard (``are-workers dashboard``): queues, workers, jobs, schedules and
compliance on the ledger, with replay, cancel, pause and confirm for operators.

``app.py`` serves the pages, ``queries.py`` holds their SQL, ``actions.py`` the audited
actions, ``access.py`` tokens, sessions and CSRF, ``redact.py`` what is shown of arguments
and error messages. Needs the ``dashboard`` extra (Starlette, Uvicorn, Jinja2).
"""
