import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from studio.vocoders.wavenet import WaveNet, WaveNetConfig, fold, mu_law_decode, mu_law_encode, stitch


def tiny(**kw):
    base = dict(n_mels=80, hop_length=8, layers=3, stacks=2, residual_channels=8,
                gate_channels=16, skip_channels=8, cond_channels=8, n_speakers=2, speaker_dim=4, quantize_channels=32)
    base.update(kw)
    return WaveNetConfig(**base)


def test_shapes_and_receptive_field():
    cfg = tiny()
    model = WaveNet(cfg)
    x = torch.randint(0, 32, (2, 40))
    logits = model.logits(x, torch.randn(2, 5, 80), torch.tensor([0, 1]))
    assert logits.shape == (2, 32, 40)
    assert model.receptive_field == 1 + 2 * (1 + 2 + 4)
    assert model.condition(torch.randn(1, 5, 80)).shape == (1, cfg.cond_channels, 5)


def test_causality_future_samples_do_not_change_the_past():
    torch.manual_seed(0)
    model = WaveNet(tiny()).eval()
    mel, spk = torch.randn(1, 5, 80), torch.tensor([1])
    x = torch.randint(0, 32, (1, 40))
    y = x.clone()
    y[0, 25:] = (y[0, 25:] + 7) % 32
    a, b = model.logits(x, mel, spk), model.logits(y, mel, spk)
    torch.testing.assert_close(a[..., :26], b[..., :26])  # logits at t depend on samples < t only
    assert not torch.allclose(a[..., 27:], b[..., 27:])


@pytest.mark.parametrize("native_ok", [True, False], ids=["kernel", "python"])
def test_incremental_generation_equals_full_convolution(native_ok):
    for kernel in (2, 3):
        torch.manual_seed(kernel)
        model = WaveNet(tiny(kernel_size=kernel)).eval()
        mel, spk = torch.randn(2, 6, 80), torch.tensor([0, 1])
        x = torch.randint(0, 32, (2, 48))
        with torch.no_grad():
            full = model.logits(x, mel, spk)
        incremental = model.generate(mel, spk, teacher=x, native_ok=native_ok)
        torch.testing.assert_close(incremental, full, rtol=1e-4, atol=1e-4)


def test_free_generation_is_seeded():
    model = WaveNet(tiny()).eval()
    mel, spk = torch.randn(1, 3, 80), torch.tensor([0])
    a, b = model.generate(mel, spk, seed=1), model.generate(mel, spk, seed=1)
    assert a.shape == (1, 24) and torch.equal(a, b)
    assert torch.equal(model.generate(None, spk, seed=1, cond=model.condition(mel)), a)


def test_vocoder_folds_a_line_into_one_batch():
    from studio.vocoders.wavenet import WaveNetVocoder

    cfg = tiny(fold_seconds=8 * 5 / 16000, fold_shift_seconds=2 / 16000, fold_crossfade_seconds=2 / 16000)
    voc = WaveNetVocoder(WaveNet(cfg), ["slt", "rms"])
    mel = torch.randn(23, 80).numpy()
    wav = voc.infer(mel, "rms", seed=3)
    assert wav.shape == (23 * 8,) and wav.dtype == np.float32 and np.abs(wav).max() <= 1.0
    assert np.array_equal(wav, voc.infer(mel, "rms", seed=3)) and not np.array_equal(wav, voc.infer(mel, "slt", seed=3))


def test_vocoder_shares_a_line_out_evenly_between_folds(monkeypatch):
    from studio.vocoders.wavenet import WaveNetVocoder

    cfg = tiny(fold_seconds=8 * 5 / 16000, fold_warmup_seconds=8 * 2 / 16000, fold_shift_seconds=1 / 16000,
               fold_crossfade_seconds=1 / 16000)
    voc = WaveNetVocoder(WaveNet(cfg))
    seen = []
    generate = voc.model.generate
    monkeypatch.setattr(voc.model, "generate", lambda *a, **kw: seen.append(kw["cond"].shape) or generate(*a, **kw))
    assert voc.fold_geometry()[:3] == (5, 2, 1)
    for n_mel, folds, frames in ((6, 2, 3), (10, 2, 5), (11, 3, 4), (3, 1, 3)):
        assert voc.infer(torch.randn(n_mel, 80).numpy()).shape == (n_mel * 8,)
        assert seen[-1] == (folds, cfg.cond_channels, 2 + frames + 1)  # warm-up + fold + look-ahead frames


def test_vocoder_post_filter_pulls_its_output_toward_the_mel():
    from studio.audio import AudioConfig, mel_spectrogram
    from studio.vocoders.wavenet import WaveNetVocoder

    audio = AudioConfig()
    t = np.arange(int(0.3 * audio.sample_rate)) / audio.sample_rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (t < 0.2)).astype(np.float32)  # a tone, then silence
    mel = mel_spectrogram(tone, audio).numpy()
    torch.manual_seed(0)
    model = WaveNet(tiny(hop_length=audio.hop_length, fold_seconds=0.05))
    raw = WaveNetVocoder(model).infer(mel, seed=1)  # random weights: noise
    filtered = WaveNetVocoder(model, audio=audio).infer(mel, seed=1)

    def error(w):
        m = mel_spectrogram(w, audio).numpy()[: len(mel)]
        return float(np.abs(m - mel).mean())

    assert filtered.shape == raw.shape and np.abs(filtered).max() <= 1.0
    # random weights are far off (8.6 nats); two passes of at most 12 dB can take off 2.8 (measured: 2.5)
    assert error(filtered) < error(raw) - 1.5, (error(filtered), error(raw))
    model.cfg.postfilter_db = 0.0  # off: the raw samples
    assert np.array_equal(WaveNetVocoder(model, audio=audio).infer(mel, seed=1), raw)


def test_fold_and_stitch_reconstruct_the_signal():
    hop, frames, left, right = 8, 5, 3, 1
    T_mel = 23
    mel = torch.arange(T_mel, dtype=torch.float32)[:, None].repeat(1, 4)
    segs, n = fold(mel, frames, left, right)
    assert segs.shape == (math.ceil(T_mel / frames), left + frames + right, 4) and n == segs.shape[0]
    torch.testing.assert_close(segs[1, :, 0], torch.arange(5 - left, 10 + right, dtype=torch.float32))
    # a signal "generated" per segment by repeating each frame's value hop times: every fold is in
    # step with the others, so the best shift is none and the cross-fades mix equal samples
    wav = segs[..., 0].repeat_interleave(hop, dim=1)
    expected = mel[:, 0].repeat_interleave(hop)
    torch.testing.assert_close(stitch(wav, hop, frames, left, T_mel), expected)
    torch.testing.assert_close(stitch(wav, hop, frames, left, T_mel, shift=4, crossfade=6), expected)


def test_stitch_lines_up_folds_that_are_out_of_step():
    """Folds of the same tone, every other one half a period late: cross-fading them as they are
    cancels the tone at each seam; lining them up first keeps its level through every seam."""
    hop, frames, left, right, period = 10, 8, 8, 2, 40
    n, seg_len = 6, (left + frames + right) * hop
    t = torch.arange(seg_len, dtype=torch.float64)
    segs = torch.stack([torch.sin(2 * math.pi * (t + (period // 2) * (i % 2)) / period) for i in range(n)])
    seams = [i * frames * hop for i in range(1, n)]

    def seam_level(wav):  # RMS over the 16 samples before each seam, where the cross-fade is
        return min(float(wav[b - 16 : b].pow(2).mean().sqrt()) for b in seams)

    plain = stitch(segs, hop, frames, left, n * frames, shift=0, crossfade=16)
    lined = stitch(segs, hop, frames, left, n * frames, shift=period // 2, crossfade=16)
    # a steady tone's RMS over those samples is 0.78 (measured: plain 0.46, lined up 0.78)
    assert seam_level(plain) < 0.5 and seam_level(lined) > 0.7, (seam_level(plain), seam_level(lined))
    # and the result is one continuous tone: each sample follows from the two before it
    x = lined.numpy()
    step = np.abs(x[2:] - 2 * math.cos(2 * math.pi / period) * x[1:-1] + x[:-2])
    assert step.max() < 0.05, step.max()


def test_mu_law_round_trip():
    x = torch.linspace(-1, 1, 101)
    back = mu_law_decode(mu_law_encode(x, 256), 256)
    assert float((back - x).abs().max()) < 0.05


def test_preemphasis_round_trip_and_the_vocoder_undoes_it():
    from studio.training.dataset import collate_vocoder
    from studio.vocoders.wavenet import WaveNetVocoder, deemphasize, preemphasize

    x = torch.randn(2, 500) * 0.1
    y = preemphasize(x, 0.86)
    torch.testing.assert_close(y[:, 1:], x[:, 1:] - 0.86 * x[:, :-1])
    torch.testing.assert_close(deemphasize(y, 0.86), x, rtol=1e-4, atol=1e-5)
    assert preemphasize(x, 0.0) is x and deemphasize(x, 0.0) is x
    batch = collate_vocoder([{"id": "a", "wav": x[0], "mel": torch.zeros(2, 80), "speaker": 0}], 256, 0.86)
    assert torch.equal(batch["audio"][0], mu_law_encode(y[0], 256))  # the model learns the emphasised signal

    torch.manual_seed(0)
    one_fold = dict(fold_seconds=1.0, fold_shift_seconds=0.0)  # the whole line in one fold, nothing shifted
    plain = WaveNet(tiny(**one_fold))
    emph = WaveNet(tiny(**one_fold, preemphasis=0.86))
    emph.load_state_dict(plain.state_dict())
    mel = torch.randn(12, 80).numpy()
    a, b = WaveNetVocoder(plain).infer(mel, seed=2), WaveNetVocoder(emph).infer(mel, seed=2)
    # emphasising the second model's output again gives the first's samples, wherever neither
    # of two neighbouring samples was clipped (the first sample's predecessor is in the warm-up)
    kept = (np.abs(b[1:]) < 0.999) & (np.abs(b[:-1]) < 0.999)
    assert kept.mean() > 0.3
    np.testing.assert_allclose((b[1:] - 0.86 * b[:-1])[kept], a[1:][kept], rtol=1e-4, atol=1e-5)


def test_vocoder_training_runs_and_resumes(tmp_path):
    import json
    import subprocess
    import sys

    from studio.checkpoint import load_checkpoint
    from tests.conftest import ROOT
    from tests.test_tacotron import _tiny_corpus

    corpus = _tiny_corpus(tmp_path)
    cfg = {"model": {"layers": 3, "stacks": 1, "residual_channels": 8, "gate_channels": 16, "skip_channels": 8,
                     "cond_channels": 8, "quantize_channels": 64},
           "train": {"batch_size": 2, "max_steps": 2, "save_every": 1, "sample_every": 2, "log_every": 1}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "studio.training.train", "wavenet", "--data", str(corpus), "--out",
           str(tmp_path / "run"), "--config", str(tmp_path / "cfg.json")]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    blob = load_checkpoint(tmp_path / "run" / "model.pt")
    assert blob["model_type"] == "wavenet" and blob["config"]["hop_length"] == 200
    assert list((tmp_path / "run" / "samples").glob("copy_*.wav"))
    assert 0 <= blob["metrics"]["sample_stoi"] <= 1 and 1 <= blob["metrics"]["sample_pesq"] <= 4.7
    res = subprocess.run(cmd + ["--set", "train.max_steps=3"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and load_checkpoint(tmp_path / "run" / "last.pt")["train_state"]["step"] == 3


def test_gta_mels_line_up_with_the_audio_and_feed_the_vocoder(tmp_path, tiny_checkpoint_dir):
    import numpy as np

    from studio.audio import AudioConfig
    from studio.checkpoint import load_checkpoint
    from studio.text import Frontend, Vocab
    from studio.training.dataset import TTSDataset, VocoderDataset
    from studio.training.gta import dump_gta
    from tests.test_tacotron import _tiny_corpus

    corpus = _tiny_corpus(tmp_path)
    ckpt = tiny_checkpoint_dir / "tacotron.pt"
    assert dump_gta(ckpt, corpus, tmp_path / "gta", batch_size=3) == 8
    assert dump_gta(ckpt, corpus, tmp_path / "gta", batch_size=3) == 0  # resumable: nothing left to do
    blob = load_checkpoint(ckpt)
    ds = TTSDataset(corpus, AudioConfig(), Frontend(Vocab(blob["vocab"]), "phonemes"),
                    speakers=[s["id"] for s in blob["speakers"]])
    for i in range(len(ds)):
        gta = np.load(tmp_path / "gta" / f"{ds.items[i].id}.npy")
        real = ds[i]["mel"].numpy()
        assert gta.shape == real.shape and np.isfinite(gta).all()
        assert not np.allclose(gta, real, atol=0.1)  # the (random) model's prediction, not a copy
    vds = VocoderDataset(ds, segment_frames=10, mel_dir=tmp_path / "gta")
    item = vds[0]
    gta = torch.from_numpy(np.load(tmp_path / "gta" / f"{item['id']}.npy").astype(np.float32))
    hits = [s for s in range(len(gta) - 9) if torch.equal(item["mel"], gta[s : s + 10])]
    assert hits and item["wav"].shape == (10 * 200,)


# ---------------------------------------------------------------- linear prediction (LPCNet-style)


def test_mu_law_boundaries_encode_like_torchaudio():
    from studio.vocoders.wavenet import mu_law_boundaries

    x = torch.cat([torch.rand(20000) * 2 - 1, torch.linspace(-1, 1, 1001), torch.tensor([-1.5, 2.0])])
    for c in (32, 256):
        assert torch.equal(torch.bucketize(x, mu_law_boundaries(c), right=True), mu_law_encode(x, c))


def test_levinson_recovers_an_autoregressive_process():
    from studio.vocoders.wavenet import levinson

    true = torch.tensor([1.3, -0.8, 0.2], dtype=torch.float64)  # x[n] = 1.3 x[n-1] - 0.8 x[n-2] + 0.2 x[n-3] + w
    g = torch.Generator().manual_seed(0)
    w = torch.randn(200000, generator=g, dtype=torch.float64)
    x = torch.zeros_like(w)
    for n in range(3, len(w)):  # a pure-Python loop over numbers is fine at this length
        x[n] = true[0] * x[n - 1] + true[1] * x[n - 2] + true[2] * x[n - 3] + w[n]
    r = torch.stack([(x[: len(x) - k] * x[k:]).mean() for k in range(4)])[None]
    torch.testing.assert_close(levinson(r, 3)[0], true, atol=0.02, rtol=0)


def _lpc_tiny(**kw):
    from studio.audio import AudioConfig

    a = AudioConfig()
    return tiny(hop_length=a.hop_length, lpc_order=8, preemphasis=0.86, **kw)


def test_the_predictor_read_off_the_mel_predicts_the_waveform():
    from studio.audio import AudioConfig, mel_spectrogram
    from studio.vocoders.wavenet import preemphasize

    audio = AudioConfig()
    t = torch.arange(int(0.5 * audio.sample_rate)) / audio.sample_rate
    g = torch.Generator().manual_seed(1)
    # a buzzy vowel-like sound: harmonics of 120 Hz under a low-pass envelope, plus a little noise
    wav = sum(torch.sin(2 * math.pi * 120 * k * t) / k**1.5 for k in range(1, 30)) * 0.1
    wav = wav + 0.001 * torch.randn(len(t), generator=g)
    model = WaveNet(_lpc_tiny())
    x = preemphasize(wav, 0.86)[None]
    lpc = model.lpc(mel_spectrogram(wav, audio)[None])
    assert lpc.shape == (1, len(wav) // audio.hop_length + 1, 8) and torch.isfinite(lpc).all()
    e = x - model.predict(x, lpc)
    gain_db = 10 * math.log10(float(x.var() / e.var()))
    assert gain_db > 8.0, gain_db  # measured 11.1


@pytest.mark.parametrize("native_ok", [True, False], ids=["kernel", "python"])
def test_lpc_incremental_generation_equals_full_convolution_and_is_causal(native_ok):
    torch.manual_seed(3)
    model = WaveNet(_lpc_tiny()).eval()
    mel, spk = torch.randn(2, 3, 80) - 2, torch.tensor([0, 1])
    x = (torch.randn(2, 500) * 0.2).clamp(-1, 1)
    with torch.no_grad():
        full = model.logits(x, mel, spk)
        incremental = model.generate(mel, spk, teacher=x, native_ok=native_ok)
        y = x.clone()
        y[:, 300:] += 0.3
        later = model.logits(y, mel, spk)
    torch.testing.assert_close(incremental, full, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(later[..., :301], full[..., :301])
    assert not torch.allclose(later[..., 302:], full[..., 302:])


def test_lpc_vocoder_generates_floats_and_trains():
    from studio.training.dataset import collate_vocoder
    from studio.vocoders.wavenet import WaveNetVocoder

    torch.manual_seed(0)
    model = WaveNet(_lpc_tiny(fold_seconds=0.05))
    mel = (torch.randn(30, 80) - 3).numpy()
    wav = WaveNetVocoder(model).infer(mel, seed=4)
    assert wav.shape == (30 * 200,) and np.isfinite(wav).all() and np.abs(wav).max() <= 1.0
    assert np.array_equal(wav, WaveNetVocoder(model).infer(mel, seed=4))
    batch = collate_vocoder([{"id": "a", "wav": torch.from_numpy(wav[:800].copy()), "mel": torch.from_numpy(mel[:4]),
                              "speaker": 1}], 32, 0.86)
    out = model(batch)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and model.input_residual.weight.grad.abs().sum() > 0


def test_lpc_noise_injection_perturbs_inputs_only_in_training():
    torch.manual_seed(0)
    model = WaveNet(_lpc_tiny(lpc_noise=2.0))
    x = (torch.randn(1, 400) * 0.2).clamp(-1, 1)
    noisy = model._noisy(x)
    step = (mu_law_encode(noisy, 32) - mu_law_encode(x, 32)).float()
    assert 0.5 < float(step.abs().mean()) < 3.0  # about 2 classes of noise
    mel = torch.randn(1, 3, 80) - 2
    batch = {"wav": x, "mel": mel, "speaker": torch.tensor([0])}
    assert not torch.equal(model(batch)["loss"], model(batch)["loss"])  # a fresh draw each step
    model.eval()
    assert torch.equal(model(batch)["loss"], model(batch)["loss"])


def test_sample_floor_never_draws_the_unlikely_tail():
    torch.manual_seed(0)
    model = WaveNet(tiny()).eval()
    probs = torch.cat([torch.full((16,), 0.3 / 16), torch.full((16,), 0.7 / 16)])  # tail 0.019 each, head 0.044
    with torch.no_grad():
        model.head[3].weight.zero_()
        model.head[3].bias.copy_(probs.log())
    mel, spk = torch.randn(1, 40, 80), torch.tensor([0])
    free = model.generate(mel, spk, seed=5)
    assert (free < 16).float().mean() > 0.2  # about 30% of draws land in the tail
    model.cfg.sample_floor = 0.025
    floored = model.generate(mel, spk, seed=5)
    assert floored.min() >= 16 and torch.equal(floored, model.generate(mel, spk, seed=5))
    model.cfg.sample_floor = 1.0  # capped below 1 / C: still a valid draw, never an empty distribution
    assert model.generate(mel, spk, seed=5).min() >= 16


def _drawn_classes(logits: torch.Tensor, draws: torch.Tensor, temperature: float, floor: float) -> torch.Tensor:
    """The classes `generate`'s sampling rule picks from logits (B, C, T) at uniform draws (T, B)."""
    probs = torch.softmax(logits.permute(2, 0, 1) / temperature, dim=-1)  # (T, B, C)
    cdf = (probs - floor).clamp(min=0).cumsum(-1)
    u = draws[..., None] * (cdf[..., -1:] if floor else 1.0)
    return torch.searchsorted(cdf.contiguous(), u.contiguous())[..., 0].clamp(max=logits.shape[1] - 1).T


@pytest.mark.parametrize("lpc", [False, True], ids=["mu-law", "lpc"])
def test_native_kernel_draws_what_the_python_loop_would(lpc):
    """The compiled loop's free samples, fed back as a teacher to the Python loop, are the classes its
    sampling rule draws at the same uniform draws (a rounding difference may flip a draw that lands on
    a class boundary, so almost all rather than all). Channels of 64 and 128 take the blocked
    matrix products, with 3 rows left over after a block of 4."""
    from studio.vocoders import native

    if native._compiler() is None:
        pytest.skip("no C compiler: generation runs in Python, which the other tests cover")
    assert native.load() is not None
    kw = dict(residual_channels=64, gate_channels=128, skip_channels=64, quantize_channels=256, temperature=0.8,
              sample_floor=0.002)
    cfg = _lpc_tiny(**kw) if lpc else tiny(hop_length=40, **kw)
    torch.manual_seed(7)
    model = WaveNet(cfg).eval()
    mel, spk = torch.randn(7, 4, 80) - 2, torch.arange(7) % 2
    with torch.no_grad():
        free = model.generate(mel, spk, seed=11)
        assert torch.equal(free, model.generate(mel, spk, seed=11))
        logits = model.generate(mel, spk, teacher=free, native_ok=False)
        keep = torch.ones_like(free, dtype=torch.bool)
        if lpc:  # the sampled class is the residual's: the sample less the prediction from its past
            drawn = torch.bucketize(free - model.predict(free, model.lpc(mel)), model.mu_edges, right=True)
            # a sample clipped to +-1 hides its class, so the teacher-forced loop sees another one for
            # a receptive field: compare only where nothing within it was clipped
            clipped = F.pad((free.abs() >= 1).float(), (model.receptive_field, 0))[:, None]
            keep = F.max_pool1d(clipped, model.receptive_field + 1, stride=1)[:, 0] == 0
        else:
            drawn = free
    draws = torch.rand(free.shape[1], 7, 1, generator=torch.Generator().manual_seed(11))[..., 0]
    expected = _drawn_classes(logits, draws, cfg.temperature, cfg.sample_floor)
    assert keep.float().mean() > 0.3
    assert (drawn == expected)[keep].float().mean() > 0.99  # measured 1.0 on both
    python = model.generate(mel, spk, seed=11, native_ok=False)
    torch.testing.assert_close(python[:, :20], free[:, :20])  # the same trajectory, up to rounding


def test_native_kernel_can_be_switched_off_and_survives_a_broken_compiler(monkeypatch, tmp_path):
    from studio.vocoders import native

    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setenv("STUDIO_NATIVE", "0")
    assert native.load() is None
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.delenv("STUDIO_NATIVE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(native, "_compiler", lambda: "/bin/false")  # a "compiler" that always fails
    assert native.load() is None
    torch.manual_seed(0)
    model = WaveNet(tiny()).eval()
    assert model.generate(torch.randn(1, 3, 80), torch.tensor([0]), seed=1).shape == (1, 24)  # in Python


def test_native_kernel_rebuilds_a_damaged_cached_library(tmp_path):
    """A cached library cut short (a full disk, a killed build) is built again, not given up on.
    In fresh processes: one that has the library loaded must not see its file rewritten."""
    import os
    import subprocess
    import sys

    from studio.vocoders import native

    if native._compiler() is None:
        pytest.skip("no C compiler")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    code = "from studio.vocoders import native; assert native.load() is not None"
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True, timeout=300)
    (built,) = (tmp_path / "dubbing-studio" / "native").glob("*.so")
    built.write_bytes(b"not a shared library")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True, timeout=300)
    assert built.stat().st_size > 1000
