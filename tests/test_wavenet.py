import math

import numpy as np
import torch

from studio.vocoders.wavenet import WaveNet, WaveNetConfig, fold, mu_law_decode, mu_law_encode, unfold


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


def test_incremental_generation_equals_full_convolution():
    for kernel in (2, 3):
        torch.manual_seed(kernel)
        model = WaveNet(tiny(kernel_size=kernel)).eval()
        mel, spk = torch.randn(2, 6, 80), torch.tensor([0, 1])
        x = torch.randint(0, 32, (2, 48))
        with torch.no_grad():
            full = model.logits(x, mel, spk)
        incremental = model.generate(mel, spk, teacher=x)
        torch.testing.assert_close(incremental, full, rtol=1e-4, atol=1e-4)


def test_free_generation_is_seeded():
    model = WaveNet(tiny()).eval()
    mel, spk = torch.randn(1, 3, 80), torch.tensor([0])
    a, b = model.generate(mel, spk, seed=1), model.generate(mel, spk, seed=1)
    assert a.shape == (1, 24) and torch.equal(a, b)
    assert torch.equal(model.generate(None, spk, seed=1, cond=model.condition(mel)), a)


def test_vocoder_folds_a_line_into_one_batch():
    from studio.vocoders.wavenet import WaveNetVocoder

    cfg = tiny(fold_seconds=8 * 5 / 16000, fold_overlap_seconds=8 / 16000)  # 5-frame folds, 1-frame overlap
    voc = WaveNetVocoder(WaveNet(cfg), ["slt", "rms"])
    mel = torch.randn(23, 80).numpy()
    wav = voc.infer(mel, "rms", seed=3)
    assert wav.shape == (23 * 8,) and wav.dtype == np.float32 and np.abs(wav).max() <= 1.0
    assert np.array_equal(wav, voc.infer(mel, "rms", seed=3)) and not np.array_equal(wav, voc.infer(mel, "slt", seed=3))


def test_vocoder_post_filter_pulls_its_output_toward_the_mel():
    from studio.audio import AudioConfig, mel_spectrogram
    from studio.vocoders.wavenet import WaveNetVocoder

    audio = AudioConfig()
    t = np.arange(int(0.3 * audio.sample_rate)) / audio.sample_rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (t < 0.2)).astype(np.float32)  # a tone, then silence
    mel = mel_spectrogram(tone, audio).numpy()
    torch.manual_seed(0)
    model = WaveNet(tiny(hop_length=audio.hop_length, fold_seconds=0.05, fold_overlap_seconds=0.0125))
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


def test_fold_unfold_reconstructs_the_signal():
    hop, frames, overlap = 8, 5, 2
    T_mel = 23
    mel = torch.arange(T_mel, dtype=torch.float32)[:, None].repeat(1, 4)
    segs, n = fold(mel, frames, overlap)
    assert segs.shape == (math.ceil(T_mel / frames), frames + 2 * overlap, 4) and n == segs.shape[0]
    # a signal "generated" per segment by repeating each frame's value hop times
    wav = segs[..., 0].repeat_interleave(hop, dim=1)
    out = unfold(wav, hop, frames, overlap, T_mel)
    expected = mel[:, 0].repeat_interleave(hop)
    torch.testing.assert_close(out, expected)


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
    plain = WaveNet(tiny(fold_seconds=8 * 5 / 16000, fold_overlap_seconds=8 / 16000))
    emph = WaveNet(tiny(fold_seconds=8 * 5 / 16000, fold_overlap_seconds=8 / 16000, preemphasis=0.86))
    emph.load_state_dict(plain.state_dict())
    mel = torch.randn(12, 80).numpy()
    a, b = WaveNetVocoder(plain).infer(mel, seed=2), WaveNetVocoder(emph).infer(mel, seed=2)
    expected = deemphasize(torch.from_numpy(a), 0.86).clamp(-1, 1)  # clipped like any other take
    np.testing.assert_allclose(b, expected.numpy(), rtol=1e-4, atol=1e-5)


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
