import numpy as np
import pytest

from studio.audio import (
    AudioConfig,
    duck_envelope,
    griffin_lim,
    load_wav,
    match_mel,
    mel_spectrogram,
    mix_over,
    normalise_loudness,
    resample,
    rms_db,
    save_wav,
    spectral_convergence,
    trim_silence,
)


def test_mel_shape_and_frame_rate():
    cfg = AudioConfig()
    wav = np.random.default_rng(0).standard_normal(cfg.sample_rate).astype(np.float32) * 0.1
    mel = mel_spectrogram(wav, cfg)
    assert mel.shape == (cfg.sample_rate // cfg.hop_length + 1, cfg.n_mels)
    assert cfg.frames_per_second == 80.0
    batch = mel_spectrogram(np.stack([wav, wav]), cfg)
    assert batch.shape == (2, *mel.shape)


def test_silence_maps_to_log_floor():
    cfg = AudioConfig()
    mel = mel_spectrogram(np.zeros(4000, np.float32), cfg)
    assert float(mel.max()) == pytest.approx(cfg.log_silence)


def test_wav_round_trip(tmp_path):
    wav = (np.sin(np.linspace(0, 2000, 16000)) * 0.5).astype(np.float32)
    for suffix in (".wav", ".flac"):
        path = save_wav(tmp_path / f"a{suffix}", wav, 16000)
        back, sr = load_wav(path)
        assert sr == 16000
        np.testing.assert_allclose(back, wav, atol=1e-4)


def test_resample_keeps_duration_and_pitch():
    sr = 22050
    t = np.arange(sr) / sr
    wav = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = resample(wav, sr, 16000)
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins over one second


def test_loudness_normalisation_and_peak_limit():
    wav = (np.random.default_rng(1).standard_normal(16000) * 0.01).astype(np.float32)
    out = normalise_loudness(wav, -20.0)
    assert rms_db(out) == pytest.approx(-20.0, abs=0.5) or np.max(np.abs(out)) == pytest.approx(0.95, abs=1e-3)
    assert np.max(np.abs(out)) <= 0.95 + 1e-6
    assert not np.any(normalise_loudness(np.zeros(10, np.float32)))


def test_trim_silence_keeps_speech():
    sr = 16000
    tone = (np.sin(np.arange(sr) / 5) * 0.5).astype(np.float32)
    wav = np.concatenate([np.zeros(sr, np.float32), tone, np.zeros(sr, np.float32)])
    out = trim_silence(wav, 40, pad_s=0.05, sample_rate=sr)
    assert sr <= len(out) <= sr + 0.2 * sr


def test_duck_envelope_dips_under_speech_with_ramps():
    sr = 100
    env = duck_envelope(1000, sr, [(2.0, 4.0), (4.2, 5.0)], duck_db=20.0, ramp_s=0.5)
    assert env[100] == 1.0 and env[999] == 1.0  # untouched far from speech
    assert np.allclose(env[200:500], 0.1)  # down 20 dB while speaking, and across the 0.2 s gap
    assert 0.1 < env[175] < 1.0 and 0.1 < env[525] < 1.0  # ramps, not steps
    assert np.all(np.diff(env[140:200]) <= 0) and np.all(np.diff(env[500:560]) >= 0)


def test_mix_over_keeps_the_background_format_and_never_clips():
    voice = np.full(16000, 0.9, dtype=np.float32)  # 1 s at 16 kHz
    background = np.full((48000 * 3, 2), 0.9, dtype=np.float32)  # 3 s of stereo at 48 kHz
    mix = mix_over(voice, 16000, background, 48000, [(0.0, 1.0)], duck_db=12.0)
    assert mix.shape == (48000 * 3, 2) and mix.dtype == np.float32
    assert np.max(np.abs(mix)) <= 0.99 + 1e-6
    under, after = mix[24000, 0], mix[-1, 0]  # mid-speech, and background alone at the end
    assert under > after  # the voice is on top
    assert np.isclose(under / after, (0.9 + 0.9 * 10 ** (-12 / 20)) / 0.9, rtol=1e-3)  # ducked 12 dB, then scaled
    longer = mix_over(np.zeros(16000 * 4, np.float32), 16000, background[:, 0], 48000, [])
    assert longer.shape == (48000 * 4, 1)  # as long as the longer input


def test_audio_config_for_ljspeech_rate():
    cfg = AudioConfig(sample_rate=22050, hop_length=256, win_length=1024, fmax=8000)
    wav = np.zeros(22050, np.float32)
    assert mel_spectrogram(wav, cfg).shape == (22050 // 256 + 1, 80)
    assert AudioConfig.from_dict(cfg.to_dict()) == cfg


def test_griffin_lim_recovers_teacher_mel(teacher_wav):
    """Griffin-Lim of a teacher utterance's mel gives back audio whose mel is close.

    Measured here: spectral convergence of the mel magnitudes 0.08-0.12 with 32 iterations (four teachers)
    (0 is identical; random phase scores ~0.6), and the log-mel L1 error under 0.4 nats.
    """
    cfg = AudioConfig()
    mel = mel_spectrogram(teacher_wav, cfg)
    wav = griffin_lim(mel.numpy(), cfg, n_iter=32, power=1.0)
    assert abs(len(wav) - len(teacher_wav)) <= cfg.hop_length
    mel2 = mel_spectrogram(wav, cfg)
    n = min(len(mel), len(mel2))
    a, b = np.exp(mel[:n].numpy()), np.exp(mel2[:n].numpy())
    sc = np.linalg.norm(a - b) / np.linalg.norm(a)
    assert sc < 0.25, sc
    speech = mel[:n] > cfg.log_silence + 3  # ignore bins at the floor
    assert float(np.abs((mel[:n] - mel2[:n]).numpy()[speech.numpy()]).mean()) < 0.5
    assert spectral_convergence(teacher_wav, wav, cfg) < 0.6  # linear STFT, phase-blind


def test_match_mel_pulls_a_distorted_waveform_toward_its_mel_and_keeps_a_matching_one(teacher_wav):
    """The vocoder post-filter: hiss in the pauses and a tilted spectrum are corrected toward the
    target mel; a waveform that already matches is left as it is, phase included."""
    import torch

    cfg = AudioConfig()
    target = mel_spectrogram(teacher_wav, cfg)
    kept = match_mel(teacher_wav, target, cfg)
    assert kept.shape == teacher_wav.shape
    assert np.abs(kept - teacher_wav).max() < 1e-4  # measured: 1.5e-7

    rng = np.random.default_rng(0)
    tilted = torch.as_tensor(teacher_wav) - 0.8 * torch.nn.functional.pad(torch.as_tensor(teacher_wav), (1, 0))[:-1]
    distorted = (tilted.numpy() + 0.003 * rng.standard_normal(len(teacher_wav))).astype(np.float32)  # highs up, hiss

    def error(w):
        m = mel_spectrogram(w, cfg)
        n = min(len(m), len(target))
        return float((m[:n] - target[:n]).abs().mean())

    fixed = match_mel(distorted, target, cfg, max_db=12.0, iterations=2)
    assert fixed.shape == distorted.shape
    assert error(fixed) < 0.3 * error(distorted), (error(fixed), error(distorted))  # measured: 0.19
    assert np.array_equal(match_mel(distorted, target, cfg, iterations=0), distorted)
    assert np.array_equal(match_mel(distorted[:100], target[:1], cfg), distorted[:100])  # too short: unchanged
