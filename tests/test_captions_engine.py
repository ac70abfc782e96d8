"""The captions engines on speech made by espeak-ng: the default engine (pocketsphinx, its model in the
package) transcribes police and IAG sentences offline; the optional engines say clearly what is
missing. Accuracy on synthetic speech is poor and is measured by bench/captions.py, not asserted here
beyond "some words are recognised"."""
from __future__ import annotations

import pytest

from media.captions import audio, engine
from media.config import WorkerConfig
from tests.captions_support import SENTENCES, common_words, espeak_wav, wer


@pytest.fixture(scope="module")
def recogniser():
    return engine.create("pocketsphinx")


def test_pocketsphinx_transcribes_espeak_sentences(tmp_path, recogniser):
    heard = []
    for i, sentence in enumerate(SENTENCES[:4]):
        pcm = audio.wav_to_pcm(str(espeak_wav(sentence, tmp_path / f"s{i}.wav")))
        assert len(pcm) > engine.BYTES_PER_SECOND  # over a second of 16 kHz speech
        text = engine.transcribe(recogniser, pcm)
        heard.append((sentence, text))
    rates = [wer(ref, hyp) for ref, hyp in heard]
    assert all(isinstance(r, float) and r >= 0 for r in rates)
    assert any(text for _, text in heard), heard
    assert any(common_words(ref, hyp) for ref, hyp in heard), heard  # some words recognised


def test_the_recogniser_is_reusable_and_partial_text_grows(tmp_path, recogniser):
    pcm = audio.wav_to_pcm(str(espeak_wav(SENTENCES[1], tmp_path / "q.wav")))
    half = len(pcm) // 2 & ~1
    recogniser.feed(pcm[:half])
    first = recogniser.partial()
    recogniser.feed(pcm[half:])
    final = recogniser.finish()
    assert isinstance(first, str) and final
    again = engine.transcribe(recogniser, pcm)  # the next utterance starts clean
    assert again == final


def test_opus_round_trip_keeps_the_speech(tmp_path, recogniser):
    """What the worker does: 48 kHz Opus packets decoded and resampled to 16 kHz for the engine."""
    wav = espeak_wav(SENTENCES[2], tmp_path / "o.wav")
    packets = audio.wav_to_opus(str(wav), silence_after=0.2)
    pcm = audio.OpusToPcm().decode(list(packets))
    direct = audio.wav_to_pcm(str(wav))
    assert abs(len(pcm) - len(direct)) < engine.BYTES_PER_SECOND  # same length within a second
    assert engine.transcribe(recogniser, pcm)


def test_wer_is_the_word_edit_distance():
    assert wer("stop and search", "stop and search") == 0.0
    assert wer("stop and search", "stop search") == pytest.approx(1 / 3)
    assert wer("stop and search", "") == 1.0


@pytest.mark.parametrize("name,model_dir,message", [
    ("vosk", None, "set COLLAB_CAPTIONS_MODEL_DIR"),
    ("faster-whisper", None, "set COLLAB_CAPTIONS_MODEL_DIR"),
    ("vosk", "/nonexistent/model", "is not a directory"),
    ("espnet", None, "must be one of"),
])
def test_optional_engines_say_what_is_missing(name, model_dir, message):
    with pytest.raises(engine.EngineError, match=message):
        engine.create(name, model_dir)
    with pytest.raises(ValueError, match=message):
        WorkerConfig.from_env({"COLLAB_SECRET_KEY": "k", "COLLAB_CAPTIONS_ENGINE": name,
                               **({"COLLAB_CAPTIONS_MODEL_DIR": model_dir} if model_dir else {})})


def test_an_engine_whose_package_is_missing_is_refused_at_start_up(tmp_path):
    """vosk and faster-whisper are not installed here (optional): the worker refuses to start, naming the
    package, instead of failing at the first word."""
    with pytest.raises(ValueError, match="package is not installed"):
        WorkerConfig.from_env({"COLLAB_SECRET_KEY": "k", "COLLAB_CAPTIONS_ENGINE": "vosk",
                               "COLLAB_CAPTIONS_MODEL_DIR": str(tmp_path)})


def test_captions_are_on_by_default_and_can_be_turned_off():
    assert WorkerConfig.from_env({"COLLAB_SECRET_KEY": "k"}).captions_engine == "pocketsphinx"
    assert WorkerConfig.from_env({"COLLAB_SECRET_KEY": "k", "COLLAB_CAPTIONS_ENGINE": "off"}).captions_engine == "off"
