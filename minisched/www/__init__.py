"""The web UI: server-rendered Jinja2 pages and a little JavaScript, on the same service functions as
the REST API (minisched.service)."""
