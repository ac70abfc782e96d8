"""Running LibreOffice on an uploaded document so that it reads nothing but that
document and reaches no network.

An office document can link images and objects by address: `file:///<data
dir>/slides/<id>/1.png` would draw another room's slide into the attacker's
deck, and `http://127.0.0.1:…` would make the server fetch an address of the
attacker's choosing. Two layers keep both out:

1. LibreOffice's own settings, written into the conversion's fresh profile:
   links from documents outside trusted locations are blocked
   (`BlockUntrustedRefererLinks`) and macros never run.
2. On Linux, a sandbox (checked at run time, once per process):
   - bubblewrap (`bwrap`, Debian package `bubblewrap`, installed by `make
     soffice`): new namespaces for everything (`--unshare-all`: no network, no
     other processes), a fresh tmpfs as / with read-only binds of only /usr, /etc
     and the /bin, /lib… links (plus the converter's own folder when it lives
     outside /usr), a tmpfs home, and one writable bind: the conversion folder,
     which holds nothing but a copy of the uploaded file (and LibreOffice's
     profile). The data folder is not there at all.
   - when bwrap is missing or cannot make namespaces: `unshare -rnm` (no network;
     a tmpfs laid over the data folder, so no attachment, slide or database is
     readable). Weaker than bwrap (the rest of the file system stays visible),
     layer 1 still applies.
   - neither: the conversion is refused with a message to the uploader, unless
     the operator set COLLAB_DECK_SANDBOX=off (then LibreOffice runs with layer 1
     only). Nothing ever runs unsandboxed silently.

The conversion folder lives in the system temporary folder (mode 0700), never
inside the data folder, so hiding the data folder never hides it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

INSIDE = "/convert"         # where the conversion folder appears inside bubblewrap
HOME = "/tmp/home"          # the tmpfs home inside bubblewrap
RO_BINDS = ("/usr", "/etc")
TOP_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
PROBE = ["/bin/sh", "-c", "exit 0"]   # what a sandbox must be able to start
PROBE_TIMEOUT = 20          # seconds for `bwrap … true` to answer (it answers at once where it works)

REFUSED = ("Slides were not made from this file: the server cannot convert office documents in isolation "
           "(bubblewrap is not installed or cannot run here; see README, “Meetings”). The file is offered as "
           "a download. Attach a PDF to page through it here.")

# LibreOffice settings for every conversion: block links to anything outside the document, never run macros.
PROFILE_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="BlockUntrustedRefererLinks" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="FirstRun" oor:op="fuse"><value>false</value></prop></item>
</oor:items>
"""


class SandboxRefused(Exception):
    """No sandbox can run here and the operator has not allowed converting without one."""


@dataclass
class Plan:
    """How to start one conversion: the command, its environment, and the isolation used."""
    cmd: list[str]
    env: dict[str, str]
    how: str          # "bwrap", "unshare" or "none"


def new_folder(deck_id: int | None) -> Path:
    """A private conversion folder outside the data folder, named after its deck (the caller removes it)."""
    return Path(tempfile.mkdtemp(prefix=f"collab-convert-{deck_id}-"))


def left_behind(deck_id: int) -> list[Path]:
    """Conversion folders of a deck that a stopped server left behind."""
    return list(Path(tempfile.gettempdir()).glob(f"collab-convert-{deck_id}-*"))


_probed: dict[tuple[str, ...], bool] = {}


def _works(cmd: list[str]) -> bool:
    """Can this sandbox start a process on this machine? Asked once per process (per command)."""
    key = tuple(cmd)
    if key not in _probed:
        try:
            _probed[key] = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, timeout=PROBE_TIMEOUT).returncode == 0
        except (OSError, subprocess.SubprocessError):
            _probed[key] = False
    return _probed[key]


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in RO_BINDS:
        args += ["--ro-bind", path, path]
    for path in TOP_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _bwrap_base(exe_root: Path | None) -> list[str]:
    bwrap = shutil.which("bwrap")
    base = [bwrap or "bwrap", "--unshare-all", "--die-with-parent", "--new-session", *_system_binds(),
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", HOME]
    if exe_root is not None:
        base += ["--ro-bind", str(exe_root), str(exe_root)]
    return base


def _exe_root(exe: str, data_dir: Path) -> Path | None:
    """The converter's install folder when it lives outside /usr (e.g. /opt/libreoffice7.6), bound read-only;
    never a folder that holds the data folder."""
    real = Path(exe).resolve()
    if any(real.is_relative_to(p) for p in RO_BINDS):
        return None
    root = real.parents[1] if len(real.parents) > 2 else real.parent
    if data_dir.resolve().is_relative_to(root) or root == Path("/"):
        raise SandboxRefused("The converter is installed in a folder that also holds the data folder: "
                             "install LibreOffice elsewhere (e.g. Debian's libreoffice packages).")
    return root


def plan(exe: str, args: Callable[[str, str], list[str]], folder: Path, data_dir: Path, mode: str) -> Plan:
    """The command that runs `exe` isolated as described above; `args(folder, profile)` gives its
    arguments for the conversion folder and profile folder as the converter sees them (inside bubblewrap
    `folder` is /convert). Raises SandboxRefused when no sandbox works and `mode` is not "off"."""
    profile = folder / "profile" / "user"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "registrymodifications.xcu").write_text(PROFILE_SETTINGS)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "SAL_USE_VCLPLUGIN": "svp"}
    if sys.platform.startswith("linux") and mode != "off":
        root = _exe_root(exe, data_dir)
        if shutil.which("bwrap") and _works(_bwrap_base(None) + PROBE):
            cmd = _bwrap_base(root) + ["--bind", str(folder), INSIDE, "--chdir", INSIDE, "--",
                                       exe, *args(INSIDE, f"{INSIDE}/profile")]
            return Plan(cmd, dict(env, HOME=HOME), "bwrap")
        unshare = shutil.which("unshare")
        hide = 'PATH=/usr/bin:/bin:/usr/sbin:/sbin; mount -t tmpfs -o size=1m collab-hidden "$0" && exec "$@"'
        if unshare and _works([unshare, "-rnm", "/bin/sh", "-c", hide, tempfile.gettempdir(), *PROBE]):
            cmd = [unshare, "-rnm", "/bin/sh", "-c", hide, str(data_dir.resolve()),
                   exe, *args(str(folder), str(folder / "profile"))]
            return Plan(cmd, dict(env, HOME=str(folder)), "unshare")
    if mode != "off":
        raise SandboxRefused(REFUSED)
    return Plan([exe, *args(str(folder), str(folder / "profile"))], dict(os.environ, HOME=str(folder)), "none")
