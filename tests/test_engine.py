from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from studio.audio import AudioConfig
from studio.checkpoint import save_checkpoint
from studio.engine import Engine, stretch_mel, word_spans, word_times
from studio.errors import EngineError
from studio.models.tacotron import Tacotron
from studio.text import TextError, Vocab
from tests.conftest import SPEAKERS, tiny_tacotron_config


def test_discovers_models_and_voices(engine):
    names = {m.name: m.kind for m in engine.models()}
    assert names == {"tacotron": "acoustic", "griffinlim": "vocoder"}
    assert [v.id for v in engine.voices()] == ["slt", "rms", "awb"]
    assert engine.voices()[0].models == ["tacotron"]


def test_take_contents(engine):
    take = engine.synthesize("Hello there. How are you today?", voice="rms", retake=False)
    assert take.sample_rate == 16000 and take.audio.dtype == np.float32
    assert len(take.segments) == 2
    seg = take.segments[0]
    assert seg.alignment.shape[1] == len(seg.tokens)
    assert seg.mel.shape[1] == 80
    assert set(take.health) >= {"ok", "verdict", "focus_rate", "monotonicity", "coverage"}
    t = take.timings
    assert t["audio_s"] == pytest.approx(take.duration, abs=1e-3) and t["rtf"] > 0
    meta = take.metadata()
    assert meta["voice"] == "rms" and isinstance(meta["words"], list)


def test_word_times_are_monotonic_and_inside_the_take(engine):
    take = engine.synthesize("One two three. Four five six seven.", voice="slt", speed=1.3)
    words = take.words
    assert [w for w, _, _ in words] == ["One", "two", "three.", "Four", "five", "six", "seven."]
    starts = [s for _, s, _ in words]
    assert starts == sorted(starts)
    assert all(0 <= s <= e <= take.duration + 1e-6 for _, s, e in words)


def test_word_times_from_a_known_alignment():
    tokens = list("ab cd") + ["~"]
    assert word_spans(tokens) == [(0, 2), (3, 5)]
    align = np.zeros((6, len(tokens)))
    for t, peak in enumerate([0, 1, 1, 3, 4, 5]):
        align[t, peak] = 1
    assert word_times("ab cd", tokens, align, 0.05) == [("ab", 0.0, 0.15), ("cd", 0.15, 0.25)]


def test_concurrent_calls_match_sequential(engine):
    lines = ["The first line.", "A second, longer line of text.", "Third!", "And the fourth one?"]
    sequential = [engine.synthesize(s, voice="awb", seed=7).audio for s in lines]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda s: engine.synthesize(s, voice="awb", seed=7).audio, lines))
    for a, b in zip(sequential, parallel):
        np.testing.assert_array_equal(a, b)


def test_stream_yields_per_sentence(engine):
    takes = list(engine.stream("One. Two. Three.", voice="slt"))
    assert [t.text for t in takes] == ["One.", "Two.", "Three."]


def test_speed_changes_duration_not_pitch(long_engine):
    normal = long_engine.synthesize("Speak at a normal rate please.", voice="slt", retake=False)
    fast = long_engine.respeed(normal, 1.5)
    assert len(fast.audio) == pytest.approx(len(normal.audio) / 1.5, rel=0.05)
    mel = np.random.default_rng(0).standard_normal((100, 80))
    assert stretch_mel(mel, 2.0).shape == (50, 80)


def test_bad_requests_get_clear_errors(engine):
    with pytest.raises(EngineError, match="unknown voice 'nobody'"):
        engine.synthesize("Hi.", voice="nobody")
    with pytest.raises(EngineError, match="unknown model 'wavenet9'"):
        engine.synthesize("Hi.", voice="slt", model="wavenet9")
    with pytest.raises(EngineError, match="unknown vocoder"):
        engine.synthesize("Hi.", voice="slt", vocoder="nope")
    with pytest.raises(TextError, match="empty"):
        engine.synthesize("   ", voice="slt")
    with pytest.raises(TextError, match="limit"):
        engine.synthesize("word " * 1000, voice="slt")
    with pytest.raises(TextError, match="nothing speakable"):
        engine.synthesize("😀😀 ☃", voice="slt")
    with pytest.raises(EngineError, match="speed"):
        engine.synthesize("Hi.", voice="slt", speed=5)


def test_vocoder_pairing_needs_matching_audio(tmp_path):
    from studio.vocoders.wavenet import WaveNet, WaveNetConfig

    cfg = tiny_tacotron_config()
    save_checkpoint(tmp_path / "tacotron.pt", Tacotron(cfg), "tacotron", cfg, AudioConfig(),
                    Vocab.phonemes().to_list(), SPEAKERS)
    other = AudioConfig(sample_rate=22050, hop_length=256, win_length=1024)
    wcfg = WaveNetConfig(n_mels=80, layers=2, stacks=1, residual_channels=4, gate_channels=8, skip_channels=4,
                         n_speakers=3, hop_length=other.hop_length, sample_rate=22050)
    save_checkpoint(tmp_path / "wavenet.pt", WaveNet(wcfg), "wavenet", wcfg, other, None, SPEAKERS)
    eng = Engine(tmp_path)
    with pytest.raises(EngineError, match="different audio settings.*sample_rate 22050 vs 16000"):
        eng.synthesize("Hi.", voice="slt", vocoder="wavenet")


def test_auto_vocoder_picks_per_voice_what_was_measured_better(tmp_path, tiny_checkpoint_dir):
    from studio.render import parse_for_engine
    from studio.vocoders.wavenet import WaveNet, WaveNetConfig

    (tmp_path / "tacotron.pt").write_bytes((tiny_checkpoint_dir / "tacotron.pt").read_bytes())
    audio = AudioConfig()
    wcfg = WaveNetConfig(n_mels=80, layers=2, stacks=1, residual_channels=4, gate_channels=8, skip_channels=4,
                         n_speakers=3, fold_seconds=0.05)
    gl = {"griffinlim_pesq": 2.0, "griffinlim_stoi": 0.95}
    by_voice = {"slt": {"pesq": 2.5, "stoi": 0.96, **gl},  # better on both: the WaveNet
                "rms": {"pesq": 2.5, "stoi": 0.94, **gl},  # clearer PESQ, less intelligible: Griffin-Lim
                "awb": {"pesq": 1.9, "stoi": 0.97, **gl}}
    save_checkpoint(tmp_path / "wavenet.pt", WaveNet(wcfg), "wavenet", wcfg, audio, None, SPEAKERS,
                    metrics={"copy_synthesis": {"by_voice": by_voice}})
    eng = Engine(tmp_path)
    assert eng.vocoder_names() == ["auto", "griffinlim", "wavenet"]
    assert {v: eng.pick_vocoder(v, audio) for v in ("slt", "rms", "awb", "nobody")} == {
        "slt": "wavenet", "rms": "griffinlim", "awb": "griffinlim", "nobody": "griffinlim"}
    assert eng.pick_vocoder("slt", AudioConfig(sample_rate=22050, hop_length=256, win_length=1024)) == "griffinlim"
    take = eng.synthesize("Hi.", voice="slt", vocoder="auto", retake=False)
    assert take.vocoder == "wavenet" and take.audio.size > 0  # the take names the vocoder that ran
    assert eng.synthesize("Hi.", voice="rms", vocoder="auto", retake=False).vocoder == "griffinlim"
    script = parse_for_engine(eng, "[vocoder=auto] slt: Hi.")
    assert script.lines[0].settings["vocoder"] == "auto"
    assert Engine(tiny_checkpoint_dir).pick_vocoder("slt", audio) == "griffinlim"  # no vocoder was trained


def test_corrupt_and_hostile_checkpoints_are_skipped(tmp_path, tiny_checkpoint_dir):
    import pickle

    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint at all")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"format_version": 1, "payload": Evil()}, f)
    (tmp_path / "tacotron.pt").write_bytes((tiny_checkpoint_dir / "tacotron.pt").read_bytes())
    eng = Engine(tmp_path)
    assert [m.name for m in eng.models("acoustic")] == ["tacotron"]


def test_retake_of_a_runaway_is_tried_and_reported(long_engine):
    """A model whose stop token never fires is retaken; the verdict names the problem."""
    take = long_engine.synthesize("It never stops, does it?", voice="slt")
    assert not take.ok
    assert "runaway" in take.health["verdict"]
    assert take.health["attempts"] >= 4  # window, seed, both, clause split were all tried


def test_user_lexicon_changes_the_phonemes(tiny_checkpoint_dir):
    plain = Engine(tiny_checkpoint_dir).prepare("I like this gif.")[0].symbols
    custom = Engine(tiny_checkpoint_dir, lexicon={"GIF": "dʒˈɪf"}).prepare("I like this gif.")[0].symbols
    assert "dʒˈɪf" in custom and custom != plain
