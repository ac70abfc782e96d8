"""Speech-recognition engines behind one interface.

A `Recogniser` is fed 16 kHz mono signed 16-bit PCM in chunks (`feed`), can be asked for what it
has heard so far (`partial`) and, at the end of an utterance, gives the final text (`finish`), after
which it is ready for the next utterance. Recognisers are slow to create (they load a model), so the
captions service keeps a few and reuses them; each is used by one thread at a time.

Engines (COLLAB_CAPTIONS_ENGINE):
- `pocketsphinx` (default): the pip package ships its US English acoustic model, language model and
  dictionary, so captions work out of the box. COLLAB_CAPTIONS_MODEL_DIR may point at another
  pocketsphinx model directory (with `acoustic-model/`, `language-model.lm.bin`, `dictionary.dict`).
- `vosk`, `faster-whisper`: only when an administrator installed the package and set
  COLLAB_CAPTIONS_MODEL_DIR to a model directory they put on the machine. Nothing is ever downloaded.
- `off`: no captions.

The optional engines' packages (vosk, faster-whisper) are imported when that engine is chosen, not at
the top of this module: they are optional dependencies (not in requirements.txt), and the worker must
start without them. pocketsphinx is a requirement and imported normally.
"""
from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from typing import Protocol

from pocketsphinx import Decoder

RATE = 16000            # samples per second the engines are fed
BYTES_PER_SECOND = RATE * 2
ENGINES = ("pocketsphinx", "vosk", "faster-whisper", "off")


class EngineError(ValueError):
    """The chosen engine cannot run here (package or model missing): said once, at start-up."""


@dataclass
class Heard:
    """Text of one utterance so far (`final` False) or in the end (True)."""
    text: str
    final: bool


class Recogniser(Protocol):
    def feed(self, pcm: bytes) -> None: ...
    def partial(self) -> str: ...
    def finish(self) -> str: ...


def _clean(text: str) -> str:
    """Engines mark fillers and noise ("<sil>", "[noise]", "(cough)"); captions show words only."""
    words = [w for w in text.split() if not (w[:1] in "<[(" and w[-1:] in ">])")]
    return " ".join(words)


class PocketSphinx:
    """CMU pocketsphinx 5: the model inside the package (or `model_dir`)."""

    def __init__(self, model_dir: str | None = None) -> None:
        kwargs = {"loglevel": "FATAL"}
        if model_dir:
            kwargs.update(hmm=os.path.join(model_dir, "acoustic-model"),
                          lm=os.path.join(model_dir, "language-model.lm.bin"),
                          dict=os.path.join(model_dir, "dictionary.dict"))
        self._decoder = Decoder(**kwargs)
        self._started = False

    def feed(self, pcm: bytes) -> None:
        if not self._started:
            self._decoder.start_utt()
            self._started = True
        if pcm:
            self._decoder.process_raw(pcm, no_search=False, full_utt=False)

    def partial(self) -> str:
        if not self._started:
            return ""
        hyp = self._decoder.hyp()
        return _clean(hyp.hypstr) if hyp is not None else ""

    def finish(self) -> str:
        if not self._started:
            return ""
        self._decoder.end_utt()
        self._started = False
        hyp = self._decoder.hyp()
        return _clean(hyp.hypstr) if hyp is not None else ""


class Vosk:
    """Vosk (Kaldi): a model directory the administrator installed (e.g. vosk-model-small-en-gb)."""

    def __init__(self, model_dir: str) -> None:
        try:
            import vosk  # optional package: only installed where an administrator chose Vosk
        except ImportError:
            raise EngineError("COLLAB_CAPTIONS_ENGINE is vosk but the vosk package is not installed "
                              "(.venv/bin/pip install vosk).") from None
        vosk.SetLogLevel(-1)
        self._recogniser = vosk.KaldiRecognizer(vosk.Model(model_dir), RATE)

    def feed(self, pcm: bytes) -> None:
        if pcm:
            self._recogniser.AcceptWaveform(pcm)

    def partial(self) -> str:
        return _clean(json.loads(self._recogniser.PartialResult()).get("partial", ""))

    def finish(self) -> str:
        return _clean(json.loads(self._recogniser.FinalResult()).get("text", ""))


class FasterWhisper:
    """faster-whisper (CTranslate2): a converted model directory the administrator installed. Whisper
    works on whole utterances, so `partial` transcribes what it has so far (at most every call the
    service allows) and `finish` the whole utterance."""

    def __init__(self, model_dir: str) -> None:
        try:
            from faster_whisper import WhisperModel  # optional package, like vosk
        except ImportError:
            raise EngineError("COLLAB_CAPTIONS_ENGINE is faster-whisper but the faster-whisper package is not "
                              "installed (.venv/bin/pip install faster-whisper).") from None
        import numpy  # comes with faster-whisper

        self._np = numpy
        self._model = WhisperModel(model_dir, device="cpu", compute_type="int8", local_files_only=True)
        self._pcm = bytearray()

    def _run(self) -> str:
        if len(self._pcm) < BYTES_PER_SECOND // 4:
            return ""
        audio = self._np.frombuffer(bytes(self._pcm), dtype=self._np.int16).astype(self._np.float32) / 32768.0
        segments, _ = self._model.transcribe(audio, language="en", beam_size=1, vad_filter=False)
        return _clean(" ".join(s.text.strip() for s in segments))

    def feed(self, pcm: bytes) -> None:
        self._pcm += pcm

    def partial(self) -> str:
        return self._run()

    def finish(self) -> str:
        try:
            return self._run()
        finally:
            self._pcm = bytearray()


def check_model_dir(engine: str, model_dir: str | None) -> None:
    if engine in ("vosk", "faster-whisper"):
        if not model_dir:
            raise EngineError(f"COLLAB_CAPTIONS_ENGINE is {engine}: set COLLAB_CAPTIONS_MODEL_DIR to the model "
                              "directory you installed (models are never downloaded).")
    if model_dir and not os.path.isdir(model_dir):
        raise EngineError(f"COLLAB_CAPTIONS_MODEL_DIR {model_dir!r} is not a directory.")


def check_engine(engine: str, model_dir: str | None) -> None:
    """Whether `engine` can run here, without loading its model (the worker's start-up check)."""
    if engine not in ENGINES:
        raise EngineError(f"COLLAB_CAPTIONS_ENGINE must be one of {', '.join(ENGINES)}, not {engine!r}.")
    check_model_dir(engine, model_dir)
    package = {"vosk": "vosk", "faster-whisper": "faster_whisper"}.get(engine)
    if package and importlib.util.find_spec(package) is None:
        raise EngineError(f"COLLAB_CAPTIONS_ENGINE is {engine} but the {engine} package is not installed "
                          f"(.venv/bin/pip install {engine}).")


def create(engine: str, model_dir: str | None = None) -> Recogniser:
    """A new recogniser of `engine` (raises EngineError with the reason when it cannot run here)."""
    if engine not in ENGINES or engine == "off":
        raise EngineError(f"COLLAB_CAPTIONS_ENGINE must be one of {', '.join(ENGINES)}.")
    check_model_dir(engine, model_dir)
    if engine == "pocketsphinx":
        try:
            return PocketSphinx(model_dir)
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"pocketsphinx could not load its model: {exc}") from None
    if engine == "vosk":
        return Vosk(model_dir or "")
    return FasterWhisper(model_dir or "")


def transcribe(recogniser: Recogniser, pcm: bytes, chunk: int = BYTES_PER_SECOND // 10) -> str:
    """One whole utterance at once (tests and the benchmark)."""
    for i in range(0, len(pcm), chunk):
        recogniser.feed(pcm[i:i + chunk])
    return recogniser.finish()
