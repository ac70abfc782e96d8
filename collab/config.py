"""Settings, read once from the environment.

Every setting is documented in README.md; `SETTINGS` below is the single source
for that table (tests check the README lists each one).
"""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from collab import allowlist, timezones


class SettingError(ValueError):
    """A setting Collab cannot start with. Its message is one sentence naming the setting, shown to the
    operator instead of a traceback (wsgi.py and `flask serve` print it and exit)."""

# name, default, meaning
SETTINGS: list[tuple[str, str, str]] = [
    ("COLLAB_DATA_DIR", "./instance", "Folder holding the SQLite database, secret key, attachments, search index and slides."),
    ("COLLAB_DATABASE_URL", "sqlite:///<data dir>/collab.db", "SQLAlchemy URL of the database; use postgresql+psycopg://… for PostgreSQL."),
    ("COLLAB_SECRET_KEY", "generated into <data dir>/secret_key", "Key that signs sessions, CSRF tokens and meeting tokens."),
    ("COLLAB_HOST", "127.0.0.1", "Address `flask serve` listens on."),
    ("COLLAB_PORT", "5000", "Port `flask serve` listens on."),
    ("COLLAB_PUBLIC_URL", "http://<host>:<port>", "The address users type; sets the allowed Socket.IO origin, and Secure cookies and HSTS when https."),
    ("COLLAB_TRUSTED_PROXIES", "0", "Reverse proxies in front of the server whose X-Forwarded-For/-Proto headers are believed (0: none), so the audit log, rate limits and session lists see the real client address."),
    ("COLLAB_REDIS_URL", "(unset)", "Redis URL; when set, Socket.IO uses it as message queue and rate limits are stored there."),
    ("COLLAB_MAX_UPLOAD_MB", "25", "Largest attachment accepted, in megabytes."),
    ("COLLAB_INVITE_DAYS", "7", "Days before an invitation link expires."),
    ("COLLAB_SMTP_HOST", "(unset)", "SMTP server for e-mail; without it, links are only shown on screen."),
    ("COLLAB_SMTP_PORT", "25", "SMTP port."),
    ("COLLAB_SMTP_USER", "(unset)", "SMTP user name, if the server needs one."),
    ("COLLAB_SMTP_PASSWORD", "(unset)", "SMTP password."),
    ("COLLAB_SMTP_TLS", "off", "`starttls` or `ssl` to encrypt the SMTP connection."),
    ("COLLAB_MAIL_FROM", "collab@localhost", "Sender address of e-mails."),
    ("COLLAB_WORKERS", "1", "Web processes started by `flask serve` (more than one needs COLLAB_REDIS_URL and sticky sessions)."),
    ("COLLAB_ACCESS_LOG", "(unset)", "Set (to anything) to print one line per request to standard output; unset, `flask serve` keeps no access log."),
    ("COLLAB_MEDIA_URL", "ws://<public host>:<media port>/", "WebSocket address of the media worker(s) that carry meetings, comma-separated when several; each meeting stays on the worker chosen when it starts."),
    ("COLLAB_MEDIA_EMBEDDED", "on", "`off`: `flask serve` starts no media worker of its own (run `python -m media` on other hosts)."),
    ("COLLAB_MEDIA_HOST", "<COLLAB_HOST>", "Address the media worker's signalling (WebSocket) listens on."),
    ("COLLAB_MEDIA_PORT", "<COLLAB_PORT + 1>", "Port the media worker's signalling (WebSocket) listens on."),
    ("COLLAB_MEDIA_PROCESSES", "1", "Processes of one media worker, sharing its port and spreading each meeting between them (`auto`: one per CPU core)."),
    ("COLLAB_CAPTIONS_ENGINE", "pocketsphinx", "Speech recognition for meeting captions, run by the media worker on this machine: `pocketsphinx` (its English model comes with the package), `vosk` or `faster-whisper` (install the package and a model yourself and set COLLAB_CAPTIONS_MODEL_DIR; nothing is ever downloaded), or `off`."),
    ("COLLAB_CAPTIONS_MODEL_DIR", "(the model inside the pocketsphinx package)", "Directory of the speech model you installed for COLLAB_CAPTIONS_ENGINE (required for vosk and faster-whisper)."),
    ("COLLAB_CAPTIONS_SPEAKERS", "2", "People each media worker process transcribes at once (one CPU thread each); someone who starts speaking while all are busy is not captioned for that sentence, and the meeting is told so."),
    ("COLLAB_MEDIA_REPORT_URL", "http://<COLLAB_HOST>:<COLLAB_PORT>", "Address of the web app as the media worker reaches it, to save final captions as the meeting's transcript (signed with the secret key)."),
    ("COLLAB_MEDIA_FILL", "16", "With several processes: participants a process takes before the next one is used (a small meeting then needs no cross-process pipes); after that they are spread evenly."),
    ("COLLAB_MEDIA_ADDRESSES", "every interface (127.0.0.1 if the worker listens on loopback)", "IP addresses the media worker offers browsers for audio and video (ICE host candidates), comma-separated."),
    ("COLLAB_MEDIA_UDP_PORTS", "(any)", "UDP port range for meeting media, e.g. `40000-40999`, to open in a firewall."),
    ("COLLAB_MEDIA_ICE_SERVERS", "(none)", "STUN/TURN servers given to browsers, e.g. `stun:turn.example.org:3478,turn:turn.example.org:443?transport=tcp`."),
    ("COLLAB_MEDIA_TURN_SECRET", "(unset)", "coturn's `static-auth-secret`: browsers get time-limited TURN credentials made from it."),
    ("COLLAB_MEDIA_TURN_TTL", "86400", "Seconds a TURN credential stays valid."),
    ("COLLAB_MEDIA_STUN", "(unset)", "STUN server the media worker asks for its own public address, when it sits behind NAT."),
    ("COLLAB_MEDIA_VIDEO_SLOTS", "9", "Cameras each participant receives at most: the most recent speakers, plus anyone they pin; fewer when their connection cannot carry them (the worker estimates each person's downlink)."),
    ("COLLAB_MEDIA_SIMULCAST", "on", "`on`: browsers send their camera in two layers (full and quarter size); thumbnails get the small one, the stage the full one. `off`: one layer, as sent."),
    ("COLLAB_MEDIA_AUDIO_SLOTS", "3", "Voices each participant receives at once (only people speaking are forwarded)."),
    ("COLLAB_RECORDINGS_DIR", "<data dir>/recordings", "Folder where media workers write meeting recordings and the web app reads them (one shared folder, e.g. NFS, when workers run on other hosts); recordings are deleted with their room's retention period."),
    ("COLLAB_RECORDING_MAX_LABEL", "<the lowest label>", "The highest confidentiality label whose rooms' meetings may be recorded (where the room's owners allow it); non-attributed rooms are never recorded."),
    ("COLLAB_MEDIA_LOG", "INFO", "Log level of the media worker: DEBUG, INFO, WARNING or ERROR."),
    ("COLLAB_DATABASE_POOL_SIZE", "10", "PostgreSQL connections each web process keeps open."),
    ("COLLAB_DATABASE_POOL_OVERFLOW", "20", "More connections a web process may open under load (processes × (size + overflow) must stay under PostgreSQL's max_connections)."),
    ("COLLAB_DATABASE_POOL_TIMEOUT", "30", "Seconds a request waits for a free connection before it is answered 503 \"busy\"."),
    ("COLLAB_SEARCH_BACKEND", "whoosh", "`whoosh` (embedded) or `postgres` (PostgreSQL full-text; for several hosts)."),
    ("COLLAB_SEARCH_SWEEP_SECONDS", "30", "How often the server re-checks the search index and applies index changes a crashed process left behind (0: never)."),
    ("COLLAB_SEARCH_WARM_POSTINGS", "2000000", "Whoosh: postings of the most frequent words decoded into memory when a process opens the index, so the first searches of common words are as fast as later ones (2,000,000 and the index's own tables took 310 MB at 100,000 posts; 0: none)."),
    ("COLLAB_SEARCH_INDEXING", "on", "`off`: this process only records index changes (in the outbox) and leaves applying them to the server."),
    ("COLLAB_LOGIN_LIMIT", "10 per minute", "Sign-in attempts allowed per address and per account."),
    ("COLLAB_RESET_LIMIT", "5 per hour", "Self-service password reset requests allowed per client address and per e-mail address asked about."),
    ("COLLAB_PEOPLE_LIMIT", "120 per minute", "People-picker look-ups one account may make; more get 429."),
    ("COLLAB_SEARCH_LIMIT", "30 per minute", "Searches one account may run (search page and API together); more get 429."),
    ("COLLAB_UPLOAD_LIMIT", "20 per minute", "Requests carrying files (attachments, meeting decks) one account may send; more get 429."),
    ("COLLAB_IDLE_TIMEOUT_HOURS", "12", "A session unused for this many hours ends (unless \"keep me signed in\" was ticked)."),
    ("COLLAB_REMEMBER_DAYS", "30", "Days a session lasts at most, however active; \"keep me signed in\" lasts this long."),
    ("COLLAB_LOCKOUT_MINUTES", "15", "First lockout after 10 failed sign-ins to one account; each further lockout lasts twice as long."),
    ("COLLAB_ARGON2_MEMORY_KIB", "65536", "Argon2id memory per password hash, in KiB (at least 47104 = 46 MiB); raising it upgrades each hash at its next sign-in."),
    ("COLLAB_ARGON2_TIME_COST", "2", "Argon2id passes per password hash (at least 1)."),
    ("COLLAB_ARGON2_PARALLELISM", "2", "Argon2id lanes per password hash."),
    ("COLLAB_LIVE_POST_LIMIT", "20 per 10 seconds", "Posts one live (Socket.IO) connection may send."),
    ("COLLAB_DECK_SANDBOX", "auto", "`auto`: office files (PPTX, DOCX, ODP, ODT) are converted to slides by LibreOffice inside a sandbox with no network and no view of the data folder (bubblewrap, else `unshare`); where neither runs, conversion is refused and the file offered as a download. `off`: convert without a sandbox (LibreOffice's own link blocking only); only for machines where every uploader is trusted."),
    ("COLLAB_LIVE_HEARTBEAT_SECONDS", "20", "With Redis: how often each process re-writes its live presence there (heals a restarted Redis)."),
    ("COLLAB_TIME_ZONE", "Europe/London", "Time zone (a tz database name such as Europe/London) in which times are shown to people who have not chosen their own on the account page, and in the minutes and meeting announcements; times are stored in UTC. A name the tz database does not know stops the server at start-up with a message."),
    ("COLLAB_LOG_FORMAT", "text", "`json`: one JSON line per request (method, route, status, duration, request id, account id; never the query string or form) and per significant event (sign-in, lockout, upload, meeting start and end); `text`: plain lines."),
    ("COLLAB_METRICS_ALLOW", "(loopback only)", "Addresses or networks (CIDR), comma-separated, besides loopback, that may read `/metrics` (Prometheus text); others get 403."),
    ("COLLAB_HEALTH_ALLOW", "(loopback only)", "Addresses or networks (CIDR), comma-separated, besides loopback and signed-in administrators, that see each check's detail on `/readyz`; others get only the status."),
    ("COLLAB_LABELS", "OFFICIAL,OFFICIAL-SENSITIVE", "Confidentiality labels a room can carry, lowest first, comma-separated; the first is the default, and rooms with any higher label keep attachments from guests and post text out of e-mail."),
]


def _secret_key(data_dir: Path, override: str | None) -> str:
    """Use the configured key, else one generated once and kept in the data folder."""
    key = override or os.environ.get("COLLAB_SECRET_KEY")
    if key:
        return key
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _media_urls(public_url: str, port: int) -> list[str]:
    """COLLAB_MEDIA_URL, or the embedded worker on the public host at COLLAB_MEDIA_PORT (COLLAB_PORT + 1)."""
    urls = [u.strip() for u in os.environ.get("COLLAB_MEDIA_URL", "").split(",") if u.strip()]
    if urls:
        return urls
    public = urlsplit(public_url)
    media_port = int(os.environ.get("COLLAB_MEDIA_PORT") or port + 1)
    return [f"{'wss' if public.scheme == 'https' else 'ws'}://{public.hostname}:{media_port}/"]


ARGON2_MIN_MEMORY_KIB = 47104   # OWASP ASVS 5.0 (V11.4.2) minimum for argon2id: 46 MiB, 1 pass
ARGON2_MIN_TIME_COST = 1


def _argon2_settings() -> dict:
    """Password hashing cost; refuses values below the ASVS minimum."""
    memory = int(os.environ.get("COLLAB_ARGON2_MEMORY_KIB", "65536"))
    time_cost = int(os.environ.get("COLLAB_ARGON2_TIME_COST", "2"))
    parallelism = int(os.environ.get("COLLAB_ARGON2_PARALLELISM", "2"))
    if memory < ARGON2_MIN_MEMORY_KIB or time_cost < ARGON2_MIN_TIME_COST or parallelism < 1:
        raise ValueError(f"COLLAB_ARGON2_MEMORY_KIB must be at least {ARGON2_MIN_MEMORY_KIB}, "
                         f"COLLAB_ARGON2_TIME_COST at least {ARGON2_MIN_TIME_COST} and "
                         "COLLAB_ARGON2_PARALLELISM at least 1.")
    return {"ARGON2_MEMORY_KIB": memory, "ARGON2_TIME_COST": time_cost, "ARGON2_PARALLELISM": parallelism}


def _trusted_proxies() -> int:
    raw = os.environ.get("COLLAB_TRUSTED_PROXIES", "0").strip() or "0"
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 10:
        raise ValueError("COLLAB_TRUSTED_PROXIES must be a whole number from 0 to 10 (the reverse proxies in front "
                         "of the server).")
    return int(raw)


def _writable_data_dir(data_dir: Path) -> None:
    """Make the data folder if missing and prove a file can be written in it (os.access says yes to root even
    on a read-only file system, so a real file is written and removed)."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-check-"):
            pass
    except OSError as err:
        raise SettingError(f"COLLAB_DATA_DIR ({data_dir}) is not a folder Collab can write to "
                           f"({err.strerror or err}): create it, or give the account running Collab the "
                           "right to write there.") from None


def _database_url(data_dir: Path) -> str:
    url = os.environ.get("COLLAB_DATABASE_URL") or f"sqlite:///{data_dir / 'collab.db'}"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is None or parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise SettingError("COLLAB_DATABASE_URL is not a database address Collab understands: write it like "
                           "postgresql+psycopg://user:password@host:5432/dbname or sqlite:////path/to/collab.db.")
    return url


def from_env(overrides: dict | None = None) -> dict:
    overrides = overrides or {}
    data_dir = Path(overrides.get("DATA_DIR") or os.environ.get("COLLAB_DATA_DIR", "instance")).resolve()
    _writable_data_dir(data_dir)
    host = os.environ.get("COLLAB_HOST", "127.0.0.1")
    port = int(os.environ.get("COLLAB_PORT", "5000"))
    public_url = os.environ.get("COLLAB_PUBLIC_URL", f"http://{host}:{port}").rstrip("/")
    return {
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": _secret_key(data_dir, overrides.get("SECRET_KEY")),
        "DATABASE_URL": _database_url(data_dir),
        "HOST": host,
        "PORT": port,
        "PUBLIC_URL": public_url,
        "TRUSTED_PROXIES": _trusted_proxies(),
        "REDIS_URL": os.environ.get("COLLAB_REDIS_URL") or None,
        "MAX_UPLOAD_MB": int(os.environ.get("COLLAB_MAX_UPLOAD_MB", "25")),
        "INVITE_DAYS": int(os.environ.get("COLLAB_INVITE_DAYS", "7")),
        "SMTP_HOST": os.environ.get("COLLAB_SMTP_HOST") or None,
        "SMTP_PORT": int(os.environ.get("COLLAB_SMTP_PORT", "25")),
        "SMTP_USER": os.environ.get("COLLAB_SMTP_USER") or None,
        "SMTP_PASSWORD": os.environ.get("COLLAB_SMTP_PASSWORD") or None,
        "SMTP_TLS": os.environ.get("COLLAB_SMTP_TLS", "off"),
        "MAIL_FROM": os.environ.get("COLLAB_MAIL_FROM", "collab@localhost"),
        "WORKERS": int(os.environ.get("COLLAB_WORKERS", "1")),
        "MEDIA_URLS": _media_urls(public_url, port),
        "MEDIA_EMBEDDED": os.environ.get("COLLAB_MEDIA_EMBEDDED", "on").lower() not in ("off", "0", "no", "false"),
        "DATABASE_POOL_SIZE": int(os.environ.get("COLLAB_DATABASE_POOL_SIZE", "10")),
        "DATABASE_POOL_OVERFLOW": int(os.environ.get("COLLAB_DATABASE_POOL_OVERFLOW", "20")),
        "DATABASE_POOL_TIMEOUT": float(os.environ.get("COLLAB_DATABASE_POOL_TIMEOUT", "30")),
        "SEARCH_BACKEND": os.environ.get("COLLAB_SEARCH_BACKEND", "whoosh"),
        "SEARCH_SWEEP_SECONDS": float(os.environ.get("COLLAB_SEARCH_SWEEP_SECONDS", "30")),
        **({"SEARCH_WARM_POSTINGS": int(warm)} if (warm := os.environ.get("COLLAB_SEARCH_WARM_POSTINGS")) else {}),
        "SEARCH_INDEXING": os.environ.get("COLLAB_SEARCH_INDEXING", "on").lower() not in ("off", "0", "no", "false"),
        "LOGIN_LIMIT": os.environ.get("COLLAB_LOGIN_LIMIT", "10 per minute"),
        "SEARCH_LIMIT": os.environ.get("COLLAB_SEARCH_LIMIT", "30 per minute"),
        "RESET_LIMIT": os.environ.get("COLLAB_RESET_LIMIT", "5 per hour"),
        "PEOPLE_LIMIT": os.environ.get("COLLAB_PEOPLE_LIMIT", "120 per minute"),
        "UPLOAD_LIMIT": os.environ.get("COLLAB_UPLOAD_LIMIT", "20 per minute"),
        "IDLE_TIMEOUT_HOURS": float(os.environ.get("COLLAB_IDLE_TIMEOUT_HOURS", "12")),
        "REMEMBER_DAYS": float(os.environ.get("COLLAB_REMEMBER_DAYS", "30")),
        "LOCKOUT_MINUTES": float(os.environ.get("COLLAB_LOCKOUT_MINUTES", "15")),
        **_argon2_settings(),
        "LIVE_POST_LIMIT": os.environ.get("COLLAB_LIVE_POST_LIMIT", "20 per 10 seconds"),
        "LIVE_HEARTBEAT_SECONDS": float(os.environ.get("COLLAB_LIVE_HEARTBEAT_SECONDS", "20")),
        "LABELS": [x.strip() for x in os.environ.get("COLLAB_LABELS", "OFFICIAL,OFFICIAL-SENSITIVE").split(",") if x.strip()] or ["OFFICIAL"],
        "TIME_ZONE": timezones.site_setting(os.environ.get("COLLAB_TIME_ZONE")),
        "LOG_FORMAT": "json" if os.environ.get("COLLAB_LOG_FORMAT", "text").strip().lower() == "json" else "text",
        "METRICS_ALLOW": allowlist.parse("COLLAB_METRICS_ALLOW", os.environ.get("COLLAB_METRICS_ALLOW")),
        "HEALTH_ALLOW": allowlist.parse("COLLAB_HEALTH_ALLOW", os.environ.get("COLLAB_HEALTH_ALLOW")),
        "ASYNC_MODE": os.environ.get("COLLAB_ASYNC_MODE", "threading"),
        "RECORDING_MAX_LABEL": os.environ.get("COLLAB_RECORDING_MAX_LABEL") or None,
        "RECORDINGS_DIR": os.environ.get("COLLAB_RECORDINGS_DIR") or str(data_dir / "recordings"),
        "DECK_SANDBOX": "off" if os.environ.get("COLLAB_DECK_SANDBOX", "auto").lower() in ("off", "0", "no", "false")
                        else "auto",
    }
