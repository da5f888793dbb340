import math
import time

import pytest
import torch

from studio.audio import AudioConfig
from studio.checkpoint import load_checkpoint, save_checkpoint, write_blob
from studio.models.transformer_tts import MultiHeadAttention, PositionalEncoding, TransformerTTS, TransformerTTSConfig
from studio.text import Vocab
from tests.conftest import SPEAKERS, assert_every_parameter_changes
from tests.test_tacotron import make_batch


def tiny(**kw):
    base = dict(n_symbols=len(Vocab.phonemes()), n_mels=80, n_speakers=3, d_model=32, n_heads=2, encoder_layers=2,
                decoder_layers=2, ffn_dim=64, encoder_prenet_convs=1, prenet_sizes=[32, 32], speaker_dim=8, r=2,
                postnet_channels=16, postnet_layers=3, max_steps_per_token=1.0, max_positions=512)
    base.update(kw)
    return TransformerTTSConfig(**base)


def test_positional_encoding_matches_the_formula():
    pe = PositionalEncoding(16, 100)
    x = torch.zeros(1, 50, 16)
    out = pe(x)
    for pos in (0, 7, 49):
        for i in range(8):
            assert math.isclose(out[0, pos, 2 * i].item(), math.sin(pos / 10000 ** (2 * i / 16)), abs_tol=1e-5)
            assert math.isclose(out[0, pos, 2 * i + 1].item(), math.cos(pos / 10000 ** (2 * i / 16)), abs_tol=1e-5)
    assert torch.allclose(pe(x, offset=7)[0, 0], out[0, 7])
    with torch.no_grad():
        pe.alpha.fill_(2.0)
    assert torch.allclose(pe(x), 2 * out)


def test_attention_masks_causal_and_padding():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, 0.0).eval()
    x = torch.randn(2, 5, 16)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()[None, None]
    _, w, _ = mha(x, x, x, causal)
    assert w.shape == (2, 2, 5, 5)
    assert torch.all(w.masked_select(~causal.expand_as(w)) < 1e-4)  # no weight on the future
    pad = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, None, :]
    _, w, _ = mha(x, x, x, pad)
    assert torch.all(w[1, :, :, 3:] < 1e-4)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 5))


def test_forward_shapes_losses_and_parameter_updates():
    cfg = tiny()
    model = TransformerTTS(cfg)
    batch = make_batch(cfg)
    out = model(batch)
    T_dec = math.ceil(37 / cfg.r)
    assert out["mel_after"].shape == (3, T_dec * cfg.r, 80) and out["alignment"].shape == (3, T_dec, 12)
    assert_every_parameter_changes(model, batch)


def test_cached_decoding_equals_uncached():
    cfg = tiny(prenet_dropout=0.0, stop_threshold=2.0, eos_hold_steps=1000)
    torch.manual_seed(0)
    model = TransformerTTS(cfg).eval()
    ids = torch.randint(2, cfg.n_symbols, (9,))
    t = time.perf_counter()
    a = model.infer(ids, speaker=1, max_steps=30, use_cache=True)
    t_cached = time.perf_counter() - t
    t = time.perf_counter()
    b = model.infer(ids, speaker=1, max_steps=30, use_cache=False)
    t_full = time.perf_counter() - t
    torch.testing.assert_close(a.mel, b.mel, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(a.alignment, b.alignment, rtol=1e-4, atol=1e-4)
    assert a.alignment.shape == (2, 2, 30, 9) and a.timing_alignment.shape == (30, 9)
    assert t_cached > 0 and t_full > 0


def fix_cross_attention(model: TransformerTTS, key_scores) -> None:
    """Replace every decoder layer's encoder-decoder attention by fixed scores over the symbols,
    `key_scores(T_text) -> (T_text,)`, masked like the real one (so the guard's window still applies)."""
    n_heads = model.cfg.n_heads

    def fixed(query, key=None, value=None, mask=None, kv=None):
        B, T_q, T_k = query.shape[0], query.shape[1], kv[0].shape[2]
        scores = key_scores(T_k).expand(B, n_heads, T_q, T_k)
        if mask is not None:
            scores = scores.masked_fill(~mask, -1e4)
        return torch.zeros_like(query), torch.softmax(scores, -1), kv

    for layer in model.decoder:
        layer.cross_attn.forward = fixed


def test_monotonic_guard_on_the_timing_head():
    """Make every encoder-decoder head pull to the last symbol; only the guard keeps order."""
    from studio.eval.health import alignment_health

    cfg = tiny(stop_threshold=2.0, eos_hold_steps=1000)
    model = TransformerTTS(cfg).eval()
    fix_cross_attention(model, lambda T_k: torch.where(torch.arange(T_k) == T_k - 1, 50.0, 0.0))
    ids = torch.randint(2, cfg.n_symbols, (30,))
    free = alignment_health(model.infer(ids, max_steps=25, monotonic=False).timing_alignment.numpy())
    guarded = alignment_health(model.infer(ids, max_steps=25, monotonic=True).timing_alignment.numpy())
    assert free["skips"] and not guarded["skips"]


def test_save_load_identity(tmp_path):
    cfg = tiny()
    model = TransformerTTS(cfg).eval()
    path = save_checkpoint(tmp_path / "transformer_tts.pt", model, "transformer_tts", cfg, AudioConfig(),
                           Vocab.phonemes().to_list(), SPEAKERS)
    clone = TransformerTTS(tiny()).eval()
    clone.load_state_dict(load_checkpoint(path)["state_dict"])
    ids = torch.randint(2, cfg.n_symbols, (8,))
    torch.testing.assert_close(model.infer(ids, seed=2).mel, clone.infer(ids, seed=2).mel)


def test_engine_serves_transformer_with_every_head(tmp_path):
    from studio.engine import Engine

    cfg = tiny()
    save_checkpoint(tmp_path / "transformer_tts.pt", TransformerTTS(cfg), "transformer_tts", cfg, AudioConfig(),
                    Vocab.phonemes().to_list(), SPEAKERS)
    take = Engine(tmp_path).synthesize("Hello there.", voice="rms", model="transformer")
    seg = take.segments[0]
    assert seg.alignment.ndim == 4 and seg.alignment.shape[:2] == (2, 2)
    assert seg.timing_alignment.shape == seg.alignment.shape[2:]


def test_fewer_frames_per_step_keeps_the_first_frames(tmp_path):
    from studio.checkpoint import config_from_dict
    from studio.checkpoint import fewer_frames_per_step

    cfg = tiny(r=4, prenet_dropout=0.0)
    old = TransformerTTS(cfg).eval()
    save_checkpoint(tmp_path / "r4.pt", old, "transformer_tts", cfg, AudioConfig(n_mels=cfg.n_mels))
    blob = fewer_frames_per_step(load_checkpoint(tmp_path / "r4.pt"), 2)
    new = TransformerTTS(config_from_dict(TransformerTTSConfig, blob["config"])).eval()
    new.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    batch = make_batch(cfg)
    with torch.no_grad():
        a, b = old(batch), new(batch)
    # causal decoding: step 0 sees only the go frame, so the r=2 model's first 2 frames are the r=4 model's
    torch.testing.assert_close(b["mel_before"][:, :2], a["mel_before"][:, :2])


def test_speed_eval_reports_the_kv_cache_speedup(tmp_path):
    from studio.engine import Engine
    from studio.eval.speed import kv_cache_speedup

    cfg = tiny()
    model = TransformerTTS(cfg)
    with torch.no_grad():
        model.stop_proj.bias.fill_(-50.0)  # untrained: never stop, run to the length limit
    save_checkpoint(tmp_path / "transformer_tts.pt", model, "transformer_tts", cfg, AudioConfig(),
                    Vocab.phonemes().to_list(), SPEAKERS)
    am = Engine(tmp_path).acoustic_model("transformer_tts")
    r = kv_cache_speedup(am, ["Hello there.", "A second, longer line of the script."])
    assert r["decoder_steps"] > 2 and r["cached_s"] > 0 and r["uncached_s"] > 0
    assert r["speedup"] == pytest.approx(r["uncached_s"] / r["cached_s"], rel=0.05)  # times rounded to 1 ms


def test_guard_advance_limit_moves_the_window_step_by_step():
    """With every head pulled to the furthest symbol it may see, the plain guard lets the peak leap
    to the window's edge each step; with max_advance=1 the window (and so each head's peak) moves
    one symbol a step."""
    cfg = tiny(stop_threshold=2.0, eos_hold_steps=1000, window_back=0, window_ahead=2)
    model = TransformerTTS(cfg).eval()
    fix_cross_attention(model, lambda T_k: torch.arange(T_k, dtype=torch.float32) * 10.0)
    ids = torch.randint(2, cfg.n_symbols, (30,))
    plain = model.infer(ids, max_steps=12).timing_alignment.argmax(-1).tolist()
    limited = model.infer(ids, max_steps=12, max_advance=1).timing_alignment.argmax(-1).tolist()
    assert plain[:4] == [2, 4, 6, 8]  # each step the peak jumps to the window's far edge
    assert limited[:4] == [2, 3, 4, 5]  # the window's edge is only one past the last peak


def _hard_alignment(path: list[int], n_text: int) -> torch.Tensor:
    """A near one-hot alignment (T_dec, n_text) whose peak follows `path`."""
    a = torch.full((len(path), n_text), 0.01)
    a[torch.arange(len(path)), torch.tensor(path)] = 1.0
    return a / a.sum(-1, keepdim=True)


def test_forward_sum_loss_punishes_skips_and_backward_reading():
    from studio.models.layers import forward_sum_loss

    n = 8
    lens = (torch.tensor([n]), torch.tensor([16]))
    ordered = _hard_alignment([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7], n)
    skipping = _hard_alignment([0, 0, 1, 1, 2, 2, 2, 2, 5, 5, 5, 5, 6, 6, 7, 7], n)  # never reads 3 and 4
    backward = _hard_alignment(list(reversed([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7])), n)
    good = forward_sum_loss(ordered[None], *lens)
    assert good < 0.5 * forward_sum_loss(skipping[None], *lens) < forward_sum_loss(backward[None], *lens)
    # padding beyond the lengths changes nothing; heads are averaged
    padded = torch.nn.functional.pad(ordered, (0, 3, 0, 5))[None]
    torch.testing.assert_close(forward_sum_loss(padded, *lens), good)
    two_heads = torch.stack([ordered, skipping])[None]  # (B=1, H=2, T_dec, T_text)
    torch.testing.assert_close(forward_sum_loss(two_heads, *lens),
                               (good + forward_sum_loss(skipping[None], *lens)) / 2)


def test_forward_sum_loss_trains_the_cross_attention():
    torch.manual_seed(0)
    cfg = tiny()
    model = TransformerTTS(cfg)
    batch = make_batch(cfg)
    q = model.decoder[-1].cross_attn.q.weight

    def grad_of_q(weight: float) -> tuple[dict, torch.Tensor]:
        cfg.forward_sum_weight = weight
        torch.manual_seed(1)  # the same dropout masks in both passes
        out = model(batch)
        return out, torch.autograd.grad(out["loss"], q)[0]

    out, with_loss = grad_of_q(1.0)
    assert out["align_loss"] > 0 and torch.isfinite(out["loss"])
    out, without = grad_of_q(0.0)
    assert out["align_loss"] == 0
    assert not torch.allclose(with_loss, without)
    cfg.forward_sum_weight = 1.0
    torch.manual_seed(1)
    _, again = grad_of_q(1.0)
    torch.testing.assert_close(again, with_loss)  # the difference is the loss, not dropout


def test_averaging_snapshots_means_the_weights_and_loads(tmp_path):
    from studio.training.average import main as average

    cfg = tiny()
    models = [TransformerTTS(cfg) for _ in range(3)]
    paths = [save_checkpoint(tmp_path / f"model_{k}.pt", m, "transformer_tts", cfg, AudioConfig(),
                             Vocab.phonemes().to_list(), SPEAKERS, metrics={"steps": 100 * k}, half=True)
             for k, m in enumerate(models)]
    average([str(p) for p in paths] + ["--out", str(tmp_path / "avg.pt")])
    blob = load_checkpoint(tmp_path / "avg.pt")
    assert blob["metrics"]["averaged_steps"] == [0, 100, 200] and blob["metrics"]["steps"] == 200
    w = "embedding.weight"
    expected = torch.stack([m.state_dict()[w].half().float() for m in models]).mean(0)
    assert blob["state_dict"][w].dtype == torch.float16
    torch.testing.assert_close(blob["state_dict"][w].float(), expected, atol=1e-3, rtol=1e-3)
    TransformerTTS(cfg).load_state_dict(blob["state_dict"])  # a complete, loadable model

    other = tiny(d_model=16, ffn_dim=32, prenet_sizes=[16, 16])  # another architecture is refused
    save_checkpoint(tmp_path / "other.pt", TransformerTTS(other), "transformer_tts", other, AudioConfig(),
                    Vocab.phonemes().to_list(), SPEAKERS)
    with pytest.raises(SystemExit, match="config"):
        average([str(paths[0]), str(tmp_path / "other.pt"), "--out", str(tmp_path / "bad.pt")])
    assert not (tmp_path / "bad.pt").exists()

    older = load_checkpoint(paths[0])  # written before a config field existed: its default is assumed
    del older["config"]["duration_window"]
    write_blob(tmp_path / "older.pt", older)
    average([str(tmp_path / "older.pt"), str(paths[1]), "--out", str(tmp_path / "mixed.pt")])
    assert load_checkpoint(tmp_path / "mixed.pt")["config"]["duration_window"] == cfg.duration_window


def test_monotonic_durations_read_the_most_likely_path():
    from studio.models.layers import monotonic_durations

    truth = torch.tensor([2, 3, 1, 4])
    due = torch.repeat_interleave(torch.arange(4), truth)  # the symbol read at each of 10 steps
    clean = torch.full((10, 4), 0.02)
    clean[torch.arange(10), due] = 0.94
    assert monotonic_durations(clean).tolist() == truth.tolist()
    jumpy = clean.clone()
    jumpy[2:5] = 0.02
    jumpy[2:5, 3] = 0.94  # the head jumps to the last symbol for three steps, then comes back
    d = monotonic_durations(jumpy)
    assert d.sum() == 10 and d.min() >= 1  # still every symbol once, in order
    assert monotonic_durations(torch.full((3, 4), 0.25)) is None  # fewer steps than symbols


def test_duration_guide_pins_every_head_to_the_due_symbol():
    torch.manual_seed(0)
    cfg = tiny(duration_channels=8, duration_window=1, stop_threshold=2.0, eos_hold_steps=5, prenet_dropout=0.0)
    model = TransformerTTS(cfg).eval()
    with torch.no_grad():  # every symbol lasts three steps
        model.duration_predictor.out.weight.zero_()
        model.duration_predictor.out.bias.fill_(math.log1p(3.0))
    ids = torch.randint(3, cfg.n_symbols, (9,))
    out = model.infer(ids, guide="duration")
    L, H, T_dec, T_text = out.alignment.shape
    assert T_dec == 3 * 9 + cfg.eos_hold_steps  # the stop token never fires: the predicted length plus the hold
    due = torch.repeat_interleave(torch.arange(9), 3)
    for t in range(T_dec):
        centre = int(due[min(t, len(due) - 1)])
        outside = (torch.arange(T_text) - centre).abs() > 1
        assert float(out.alignment[:, :, t, outside].max()) < 1e-3
    assert out.hit_limit is False
    reference = model.infer(ids, guide="duration", use_cache=False)
    torch.testing.assert_close(out.mel, reference.mel, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="guide"):
        TransformerTTS(tiny()).infer(ids, guide="duration")  # no predictor, no duration guide


def test_duration_fit_calibrates_the_length():
    """Steps that vary around their symbol's mean: a log-domain fit says the geometric mean, so its
    lines come out short; the fitted length scale puts the total right on held-out lines."""
    from studio.training.durations import fit_predictor

    g = torch.Generator().manual_seed(0)
    pairs = []
    for _ in range(200):
        kind = torch.randint(0, 2, (12,), generator=g)
        memory = torch.nn.functional.one_hot(kind, 4).float()  # two kinds of symbol: long vowels, short consonants
        mean = torch.where(kind == 1, 6.0, 2.0)
        steps = torch.clamp(torch.round(mean * torch.exp(0.6 * torch.randn(12, generator=g))), min=1).long()
        pairs.append((memory, steps))
    _, metrics = fit_predictor(pairs, channels=8, epochs=40, lr=1e-2, val_fraction=0.2)
    assert 1.05 < metrics["length_scale"] < 1.5, metrics  # a geometric mean sits below the arithmetic one
    assert abs(metrics["length_bias"]) < 0.05, metrics


def test_duration_tool_adds_a_predictor_and_the_engine_retakes_with_it(tmp_path, monkeypatch):
    import studio.engine
    from studio.engine import Engine
    from studio.eval.health import alignment_health
    from studio.training.durations import main as durations
    from tests.test_tacotron import _tiny_corpus

    corpus = _tiny_corpus(tmp_path)
    torch.manual_seed(0)
    cfg = tiny(n_speakers=2)
    voices = [s for s in SPEAKERS if s["id"] in ("slt", "rms")]
    src = save_checkpoint(tmp_path / "src.pt", TransformerTTS(cfg), "transformer_tts", cfg, AudioConfig(),
                          Vocab.phonemes().to_list(), voices, metrics={"steps": 7}, half=True)
    ck = tmp_path / "ck"
    durations(["--checkpoint", str(src), "--data", str(corpus), "--out", str(ck / "transformer_tts.pt"),
               "--channels", "8", "--epochs", "2"])
    before, after = load_checkpoint(src), load_checkpoint(ck / "transformer_tts.pt")
    assert after["config"]["duration_channels"] == 8 and after["metrics"]["steps"] == 7
    assert after["config"]["duration_scale"] == after["metrics"]["durations"]["length_scale"] > 0
    assert after["metrics"]["durations"]["read"] == 8 and after["metrics"]["durations"]["mae_steps"] >= 0
    for k, v in before["state_dict"].items():  # the model itself is untouched
        assert torch.equal(after["state_dict"][k], v)
    assert after["state_dict"]["duration_predictor.out.weight"].dtype == torch.float16

    calls = []
    engine = Engine(ck)
    model = engine.acoustic_model("transformer_tts").model
    infer = model.infer
    monkeypatch.setattr(model, "infer", lambda *a, **k: calls.append(k.get("guide", "peak")) or infer(*a, **k))
    monkeypatch.setattr(studio.engine, "alignment_health",  # only a pinned take passes
                        lambda *a, **k: {**alignment_health(*a, **k), "ok": calls[-1] == "duration"})
    take = engine.synthesize("We like green tea.", voice="rms", model="transformer_tts")
    assert calls[:2] == ["peak", "duration"]
    assert take.segments[0].retake == "attention pinned to predicted durations"
