"""The REST API under /api/v1, in the shapes of Airflow 2.10's stable REST API, and the app that also
serves the web UI (minisched.www). Built on minisched.service, like the UI."""
