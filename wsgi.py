"""WSGI entry point: `flask --app wsgi …` and `gunicorn wsgi:app`."""
import gc
import sys

from collab import create_app
from collab.config import SettingError

try:
    app = create_app()
except SettingError as err:  # one sentence naming the setting, not a traceback (issue 17)
    sys.exit(f"Collab cannot start: {err}")

# The server process keeps everything imported so far for its whole life: freeze it out of the cyclic
# garbage collector, and collect young objects less often (a 200-post thread page allocates some
# hundred thousand; most are freed by reference counting before a collection would look at them).
# Measured: about 5 ms less CPU per thread page (bench/http.py, docs/benchmarks.md).
gc.collect()
gc.freeze()
gc.set_threshold(20_000, 50, 100)
