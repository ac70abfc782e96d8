"""Media worker settings, read from the same COLLAB_* environment variables the
web app documents (collab/config.py SETTINGS, README "Settings")."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from media.captions.engine import check_engine
from media.net import parse_port_range
from media.tokens import turn_credentials

ICE_SCHEMES = ("stun", "stuns", "turn", "turns")


def parse_ice_servers(text: str) -> list[str]:
    """"stun:a:3478, turn:b:3478?transport=udp" → validated URL list."""
    urls = [u.strip() for u in (text or "").replace("\n", ",").split(",") if u.strip()]
    for url in urls:
        scheme, _, rest = url.partition(":")
        if scheme not in ICE_SCHEMES or not rest or rest.startswith("/"):
            raise ValueError(f"ICE server {url!r} must look like stun:host:3478 or turn:host:3478?transport=udp")
    return urls


def _secret_key(env: dict) -> str:
    key = env.get("COLLAB_SECRET_KEY")
    if key:
        return key
    data_dir = os.path.abspath(env.get("COLLAB_DATA_DIR", "instance"))
    path = os.path.join(data_dir, "secret_key")
    try:
        with open(path) as fh:
            return fh.read().strip()
    except FileNotFoundError:
        raise SystemExit(f"The media worker needs the web app's secret key: set COLLAB_SECRET_KEY or "
                         f"COLLAB_DATA_DIR (no {path}).") from None


def recordings_dir(env: dict) -> str:
    """COLLAB_RECORDINGS_DIR, else the recordings folder in the data folder (as the web app reads it)."""
    return os.path.abspath(env.get("COLLAB_RECORDINGS_DIR")
                           or os.path.join(env.get("COLLAB_DATA_DIR", "instance"), "recordings"))


@dataclass
class WorkerConfig:
    secret_key: str
    host: str = "127.0.0.1"
    port: int = 5001
    addresses: list[str] | None = None          # host candidates; None: every non-loopback interface
    port_range: tuple[int, int] | None = None    # UDP ports for media
    ice_servers: list[str] = field(default_factory=list)  # given to browsers
    turn_secret: str | None = None
    turn_ttl: int = 86400
    stun: str | None = None                      # STUN server the worker itself asks for its public address
    video_slots: int = 9
    audio_slots: int = 3
    simulcast: bool = True                       # offer browsers simulcast reception (two camera layers)
    processes: int = 1
    fill: int = 16                               # participants a process takes before the next one is used
    origins: list[str] | None = None             # allowed WebSocket Origin headers (None: any)
    self_test: bool | str = True                    # True: full, "quick": names and signatures only
    # Captions (media/captions/): "off" unless chosen; from_env's default is "pocketsphinx".
    captions_engine: str = "off"
    captions_model_dir: str | None = None
    captions_speakers: int = 2                   # utterances transcribed at once (threads, recognisers)
    report_url: str | None = None                # the web app, which saves final captions (None: not saved)
    recordings_dir: str = "instance/recordings"  # where meetings are recorded (media/recorder.py), shared with the web app

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> WorkerConfig:
        env = dict(os.environ if env is None else env)
        host = env.get("COLLAB_MEDIA_HOST") or env.get("COLLAB_HOST", "127.0.0.1")
        port = int(env.get("COLLAB_MEDIA_PORT") or int(env.get("COLLAB_PORT", "5000")) + 1)
        addresses = [a.strip() for a in env.get("COLLAB_MEDIA_ADDRESSES", "").split(",") if a.strip()] or None
        if addresses is None and host in ("127.0.0.1", "localhost", "::1"):
            # A worker that only listens on loopback serves this machine only: keep media there too.
            addresses = ["127.0.0.1"]
        public = env.get("COLLAB_PUBLIC_URL", "").rstrip("/")
        cfg = cls(
            secret_key=_secret_key(env),
            host=host,
            port=port,
            addresses=addresses,
            port_range=parse_port_range(env.get("COLLAB_MEDIA_UDP_PORTS", "")),
            ice_servers=parse_ice_servers(env.get("COLLAB_MEDIA_ICE_SERVERS", "")),
            turn_secret=env.get("COLLAB_MEDIA_TURN_SECRET") or None,
            turn_ttl=int(env.get("COLLAB_MEDIA_TURN_TTL", "86400")),
            stun=env.get("COLLAB_MEDIA_STUN") or None,
            video_slots=int(env.get("COLLAB_MEDIA_VIDEO_SLOTS", "9")),
            audio_slots=int(env.get("COLLAB_MEDIA_AUDIO_SLOTS", "3")),
            simulcast=_switch(env.get("COLLAB_MEDIA_SIMULCAST", "on"), "COLLAB_MEDIA_SIMULCAST"),
            processes=_processes(env.get("COLLAB_MEDIA_PROCESSES", "1")),
            fill=int(env.get("COLLAB_MEDIA_FILL", "16")),
            origins=[public] if public else None,
            captions_engine=(env.get("COLLAB_CAPTIONS_ENGINE") or "pocketsphinx").strip().lower(),
            captions_model_dir=env.get("COLLAB_CAPTIONS_MODEL_DIR") or None,
            captions_speakers=int(env.get("COLLAB_CAPTIONS_SPEAKERS", "2")),
            report_url=env.get("COLLAB_MEDIA_REPORT_URL") or _web_url(env),
            recordings_dir=recordings_dir(env),
        )
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        cfg.check()
        return cfg

    def check(self) -> None:
        if not 1 <= self.video_slots <= 49:
            raise ValueError("COLLAB_MEDIA_VIDEO_SLOTS must be from 1 to 49")
        if not 1 <= self.audio_slots <= 10:
            raise ValueError("COLLAB_MEDIA_AUDIO_SLOTS must be from 1 to 10")
        if not 1 <= self.processes <= 64:
            raise ValueError("COLLAB_MEDIA_PROCESSES must be from 1 to 64")
        if not 1 <= self.fill <= 1000:
            raise ValueError("COLLAB_MEDIA_FILL must be from 1 to 1000")
        if self.stun and not self.stun.startswith("stun:"):
            raise ValueError("COLLAB_MEDIA_STUN must look like stun:host:3478")
        if not 1 <= self.captions_speakers <= 16:
            raise ValueError("COLLAB_CAPTIONS_SPEAKERS must be from 1 to 16")
        if self.captions_engine != "off":
            check_engine(self.captions_engine, self.captions_model_dir)  # a clear message now, not at first speech

    def browser_ice_servers(self, label: str) -> list[dict]:
        """RTCIceServer dicts for one participant, TURN entries with fresh REST credentials."""
        servers: list[dict] = []
        stun = [u for u in self.ice_servers if u.startswith(("stun:", "stuns:"))]
        turn = [u for u in self.ice_servers if u.startswith(("turn:", "turns:"))]
        if stun:
            servers.append({"urls": stun})
        if turn:
            entry: dict = {"urls": turn}
            if self.turn_secret:
                entry["username"], entry["credential"] = turn_credentials(self.turn_secret, label, self.turn_ttl)
            servers.append(entry)
        return servers


def _web_url(env: dict) -> str:
    """The web app as `flask serve` runs it beside an embedded worker: COLLAB_HOST:COLLAB_PORT."""
    host = env.get("COLLAB_HOST", "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{env.get('COLLAB_PORT', '5000')}"


def _switch(text: str, name: str) -> bool:
    value = (text or "").strip().lower()
    if value in ("on", "1", "true", "yes"):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    raise ValueError(f"{name} must be on or off")


def _processes(text: str) -> int:
    text = (text or "1").strip().lower()
    if text == "auto":
        return max(1, os.cpu_count() or 1)
    return int(text)


def split_url(url: str) -> tuple[str, int, dict]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 0, parse_qs(parts.query)
