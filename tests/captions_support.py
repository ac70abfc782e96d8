"""The captions test set: sentences of police and IAG vocabulary spoken by espeak-ng (Debian package,
installed by `make captions-voice`), and the word error rate. Used by the captions tests and by
bench/captions.py."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

SENTENCES = (
    "The advisory group will review the stop and search figures",
    "Please raise the question about stop and search",
    "The independent advisory group meets every month",
    "Community trust in the police has improved this year",
    "We need more information about the use of force",
    "The chief inspector will attend the next meeting",
    "Body worn video was switched on during the arrest",
    "The custody suite was inspected last week",
    "Hate crime reports have gone up in the city centre",
    "The panel agreed to scrutinise the complaint",
    "Officers must record the reason for every search",
    "The superintendent thanked the volunteers for their time",
    "Young people told us they do not feel safe",
    "The force will publish the results next quarter",
    "We would like to see the data broken down by age",
    "The community impact assessment is ready",
    "The neighbourhood team will patrol the park at night",
    "Members asked for training on mental health",
    "The critical incident was handled well",
    "The police and crime commissioner sent an update",
    "Please send the minutes to the whole group",
    "The next item on the agenda is taser use",
    "We agreed to meet the local council next week",
    "The report will be shared with the community",
    "Domestic abuse calls are our highest priority",
    "The sergeant explained the new procedure",
    "Can we have the figures before the next meeting",
    "The group is independent of the police",
    "Thank you all for coming this evening",
    "The action from last time has been completed",
    "Victims should be kept informed at every stage",
    "We will vote on the key message now",
)

_WORD = re.compile(r"[a-z']+")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_wav(text: str, path: Path, *, speed: int = 135, voice: str = "en-gb") -> Path:
    """`text` spoken by espeak-ng into a WAV file (22 050 Hz mono)."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True,
                   capture_output=True, timeout=60)
    return path


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance / reference words (may exceed 1)."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return float(bool(hyp))
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / len(ref)


def common_words(reference: str, hypothesis: str) -> set[str]:
    return set(words(reference)) & set(words(hypothesis))
