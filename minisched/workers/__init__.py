"""Processes that run tries away from the scheduler (Celery workers), and how they touch the database."""
