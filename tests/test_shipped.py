"""The shipped checkpoints, judged on held-out sentences (the few slow tests of the suite)."""

from __future__ import annotations

import numpy as np
import pytest

from studio.audio import AudioConfig
from studio.eval.metrics import Recognizer, mcd, wer
from studio.eval.quality import read_list, teacher_audio
from studio.text import normalize
from tests.conftest import SHIPPED

pytestmark = pytest.mark.quality

ACOUSTIC = ["tacotron", "transformer_tts"]


@pytest.fixture(scope="module")
def shipped_engine():
    from studio.engine import Engine

    for model in ACOUSTIC:
        assert (SHIPPED / f"{model}.pt").is_file(), f"checkpoints/{model}.pt is part of the repository"
    return Engine(SHIPPED)


@pytest.mark.parametrize("model", ACOUSTIC)
def test_shipped_model_describes_itself(shipped_engine, model):
    info = shipped_engine.info(model, "acoustic")
    assert info.audio == AudioConfig()
    assert {s["id"] for s in info.speakers} >= {"slt", "rms", "awb", "kal16"}
    assert info.metrics["steps"] > 1000
    assert (SHIPPED / f"{model}.pt").stat().st_size < 40_000_000


@pytest.mark.parametrize("model", ACOUSTIC)
@pytest.mark.parametrize("voice", ["slt", "rms", "awb", "kal16"])
def test_shipped_model_aligns_and_tracks_the_teacher(shipped_engine, model, voice):
    """Held-out sentences: healthy alignments, the teacher's timing, and a spectrum near it."""
    cfg = AudioConfig()
    sentences = read_list("heldout.txt", 4)
    healthy, ratios, distortions = 0, [], []
    for s in sentences:
        take = shipped_engine.synthesize(s, voice=voice, model=model, retake=False)
        healthy += take.ok
        ref = teacher_audio(voice, s, cfg)
        ratios.append(len(take.audio) / len(ref))
        distortions.append(mcd(ref, take.audio, cfg))
    assert healthy >= 3, f"{healthy}/4 healthy alignments"
    assert 0.75 < float(np.mean(ratios)) < 1.3, ratios  # an untrained model stops at once or runs away
    # MCD here: noise vs a teacher 7.1 dB, another teacher voice 4.5 dB, Griffin-Lim copy 0.5 dB.
    assert float(np.mean(distortions)) < 4.0, distortions


@pytest.mark.parametrize("model", ACOUSTIC)
def test_shipped_model_speaks_recognisable_words(shipped_engine, model):
    """pocketsphinx must recognise a held-out sentence from the shipped model."""
    recognizer = Recognizer()
    sentences = read_list("heldout.txt", 6)
    errors = []
    for s in sentences:
        take = shipped_engine.synthesize(s, voice="rms", model=model)
        errors.append(wer(normalize(s), recognizer.transcribe(take.audio, take.sample_rate)))
    assert min(errors) <= 0.5, errors


def test_shipped_wavenet_resynthesises_held_out_teacher_audio(shipped_engine):
    """Copy synthesis through the shipped WaveNet: the teacher's own mel in, audio near the
    teacher's out, for the two voices it does best and worst on (README: awb, kal16)."""
    from studio.audio import mel_spectrogram
    from studio.eval.metrics import pesq_wb, stoi

    info = shipped_engine.info("wavenet", "vocoder")
    assert info.audio == AudioConfig() and {s["id"] for s in info.speakers} >= {"slt", "rms", "awb", "kal16"}
    # "auto" takes it where its copy synthesis beat Griffin-Lim on both sentence sets (README)
    assert {v: shipped_engine.pick_vocoder(v, AudioConfig()) for v in ("slt", "rms", "awb", "kal16")} == {
        "slt": "wavenet", "rms": "wavenet", "awb": "wavenet", "kal16": "griffinlim"}
    assert (SHIPPED / "wavenet.pt").stat().st_size < 5_000_000
    cfg = AudioConfig()
    sentence = read_list("heldout.txt", 1)[0]
    scores = []
    for voice in ("awb", "kal16"):
        ref = teacher_audio(voice, sentence, cfg)
        mel = mel_spectrogram(ref, cfg).numpy()
        wav = shipped_engine.vocoder("wavenet", cfg, voice)(mel)[: len(ref)]
        scores.append((pesq_wb(ref, wav, cfg.sample_rate), stoi(ref, wav, cfg.sample_rate)))
    pesq, intelligibility = np.mean(scores, axis=0)
    # 40 held-out lines: PESQ 2.5, STOI 0.96; white noise through the same post-filter 1.29, 0.86
    assert pesq > 2.0 and intelligibility > 0.93, scores

    from studio.vocoders.wavenet import WaveNetVocoder

    raw = WaveNetVocoder.from_checkpoint(SHIPPED / "wavenet.pt")
    raw.cfg.postfilter_db = 0.0  # the network's own samples, before the post-filter
    wav = raw.infer(mel, "kal16")[: len(ref)]
    assert stoi(ref, wav, cfg.sample_rate) > 0.8  # 40 lines: 0.88
