"""Where an app keeps its search backend and indexer (set up by search.init_app).

A module of its own so that the modules of search/ reach them without
importing the package's __init__, which imports them (no import circle).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from flask import Flask, current_app


@dataclass
class SearchState:
    backend: object
    indexer: object


def state(app: Optional[Flask] = None) -> SearchState:
    return (app or current_app).extensions["collab_search"]
