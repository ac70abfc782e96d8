"""Helpers shared by the search tests: the (database, search backend)
combinations, polling with a deadline, and real PDF/DOCX files."""
from __future__ import annotations

import io
import time

import pytest

from tests.conftest import PG_URL
from tests.hostile_files import text_pdf

# Whoosh on both databases; the PostgreSQL backend needs PostgreSQL.
COMBOS = [("sqlite", "whoosh")] + ([("postgres", "whoosh"), ("postgres", "postgres")] if PG_URL else [])
WHOOSH_COMBOS = [c for c in COMBOS if c[1] == "whoosh"]


def only(combos: list[tuple[str, str]]):
    """Run a test for these (database, backend) combinations only, instead of skipping the others."""
    return pytest.mark.parametrize("combo", combos, ids=[f"{db}-{se}" for db, se in combos], indirect=True)


def combo_fixtures():
    """Fixtures overriding conftest's `backend` and `app_config` for a search test module."""

    @pytest.fixture(params=COMBOS, ids=[f"{db}-{se}" for db, se in COMBOS])
    def combo(request):
        return request.param

    @pytest.fixture
    def backend(combo):
        return combo[0]

    @pytest.fixture
    def app_config(combo):
        return {"SEARCH_BACKEND": combo[1], "SEARCH_SWEEP_SECONDS": 0}

    return combo, backend, app_config


def wait_until(fn, timeout: float, step: float = 0.01):
    """Poll `fn` until it returns something truthy; fail after `timeout` seconds."""
    start = time.monotonic()
    while True:
        got = fn()
        if got:
            return got, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(step)


def settle(app, timeout: float = 10) -> None:
    """Wait until the indexer has nothing queued (not a fixed sleep)."""
    from search import state
    from search.indexer import outbox_size

    st = state(app)
    try:
        wait_until(lambda: st.indexer.idle() and outbox_size() == 0, timeout)
    except AssertionError:
        import faulthandler
        import sys

        print("idle:", st.indexer.idle(), "outbox:", outbox_size(), file=sys.stderr)
        faulthandler.dump_traceback(sys.stderr)
        raise


def search_ids(user, q, **kw) -> list[int]:
    """Post ids found, read in a fresh transaction (so writes of other processes are seen)."""
    from collab.extensions import db
    from search import service

    db.session.rollback()
    return [r.post_id for r in service.search(user, q, **kw).results]


def pdf_bytes(text: str) -> bytes:
    """A small valid one-page PDF showing `text` (Helvetica)."""
    return text_pdf(text)


def docx_bytes(text: str) -> bytes:
    import docx

    d = docx.Document()
    d.add_paragraph(text)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()
