"""Mounts the UI's pages and static files on the app."""

from __future__ import annotations

from fastapi import FastAPI


def install_ui(app: FastAPI) -> None:
    del app
