"""Speed on this CPU: seconds of compute per second of audio, beside peer implementations.

    python -m studio eval speed --limit 5 --json

Peers run in the same process on the same input: torchaudio's Tacotron2 (random weights, its
decoder forced to emit the same number of mel frames as ours) and librosa's Griffin-Lim beside
ours (torchaudio's). A ratio below 1 means we are faster than the peer.
"""

from __future__ import annotations

import gc
import logging
import resource
import time
from pathlib import Path

import numpy as np
import torch

from studio.audio import AudioConfig, griffin_lim
from studio.eval.quality import read_list

log = logging.getLogger(__name__)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _time(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def peer_tacotron2(n_mels: int, n_symbols: int):
    from torchaudio.models import Tacotron2

    torch.manual_seed(0)
    m = Tacotron2(n_mels=n_mels, n_symbol=n_symbols, decoder_max_step=100000, gate_threshold=2.0)
    return m.eval()


def evaluate_speed(engine, limit: int = 5, models: list[str] | None = None, vocoders: list[str] | None = None,
                   peers: bool = True) -> dict:
    sentences = read_list("heldout.txt", limit)
    result: dict = {"threads": torch.get_num_threads(), "sentences": len(sentences), "acoustic": {},
                    "vocoder": {}, "peers": {}}
    for info in engine.models("acoustic"):
        if models and info.name not in models:
            continue
        am = engine.acoustic_model(info.name)
        voice = am.speakers[0]["id"]
        engine.synthesize(sentences[0], voice=voice, model=info.name, retake=False)  # warm-up
        acoustic_s, vocoder_s, audio_s, frames = 0.0, 0.0, 0.0, 0
        for s in sentences:
            take = engine.synthesize(s, voice=voice, model=info.name, retake=False)
            acoustic_s += take.timings["acoustic_s"]
            vocoder_s += take.timings["vocoder_s"]
            audio_s += take.timings["audio_s"]
            frames += sum(len(seg.mel) for seg in take.segments)
        result["acoustic"][info.name] = {
            "rtf": round(acoustic_s / audio_s, 4), "audio_s": round(audio_s, 2), "mel_frames": frames,
            "parameters": am.parameters,
        }
        first = time_to_first_audio(engine, info.name, voice, sentences)
        result["acoustic"][info.name]["time_to_first_audio_s"] = round(first, 3)
        if info.model_type == "transformer_tts":
            result["acoustic"][info.name]["kv_cache"] = kv_cache_speedup(am, sentences)
        if peers:
            ids = torch.tensor(am.frontend.prepare(sentences[0])[0].ids)[None]
            n_frames = int(frames / len(sentences))
            peer = peer_tacotron2(am.audio.n_mels, len(am.vocab))
            peer.decoder.decoder_max_step = n_frames
            t_peer = _time(lambda: peer.infer(ids), repeat=1)
            t_ours = _time(lambda: am.model.infer(ids[0], max_steps=max(1, n_frames // am.model.cfg.r)), repeat=1)
            result["peers"][f"{info.name}_vs_torchaudio_tacotron2"] = {
                "mel_frames": n_frames, "ours_s": round(t_ours, 3), "peer_s": round(t_peer, 3),
                "ratio": round(t_ours / t_peer, 3),
            }
    audio = AudioConfig()
    mel = np.random.default_rng(0).standard_normal((400, audio.n_mels)).astype(np.float32) - 4  # 5 s of frames
    seconds = len(mel) * audio.hop_length / audio.sample_rate
    for info in engine.models("vocoder"):
        if vocoders and info.name not in vocoders:
            continue
        voc_audio = info.audio or audio
        vocode = engine.vocoder(info.name, voc_audio)
        vocode(mel[:40])
        t = _time(lambda: vocode(mel), repeat=1)
        result["vocoder"][info.name] = {"rtf": round(t / seconds, 4), "audio_s": seconds}
    if peers:
        import librosa

        t_ours = _time(lambda: griffin_lim(mel, audio, n_iter=32), repeat=2)

        def librosa_gl():
            lin = librosa.feature.inverse.mel_to_stft(np.exp(mel.T), sr=audio.sample_rate, n_fft=audio.n_fft,
                                                      fmin=audio.fmin, fmax=audio.fmax, power=1.0)
            librosa.griffinlim(lin, n_iter=32, hop_length=audio.hop_length, win_length=audio.win_length)

        t_peer = _time(librosa_gl, repeat=1)
        result["peers"]["griffinlim_vs_librosa"] = {"ours_s": round(t_ours, 3), "peer_s": round(t_peer, 3),
                                                    "ratio": round(t_ours / t_peer, 3), "audio_s": seconds}
        served = engine.dir / "wavenet.pt"  # else the default config with random weights
        result["wavenet_generation"] = wavenet_speed(checkpoint=served if served.is_file() else None)
    gc.collect()
    result["peak_rss_mb"] = round(_rss_mb(), 1)
    return result


def kv_cache_speedup(am, sentences: list[str]) -> dict:
    """Transformer-TTS decoding with cached keys and values (one new position a step) against
    rerunning the decoder over the whole prefix every step, on the same sentences and the same
    number of decoder steps."""
    cached_s, full_s, steps = 0.0, 0.0, 0
    for s in sentences:
        ids = torch.tensor(am.frontend.prepare(s)[0].ids)
        n = len(am.model.infer(ids, use_cache=True).stop)
        cached_s += _time(lambda: am.model.infer(ids, max_steps=n, use_cache=True))
        full_s += _time(lambda: am.model.infer(ids, max_steps=n, use_cache=False))
        steps += n
    return {"decoder_steps": steps, "cached_s": round(cached_s, 3), "uncached_s": round(full_s, 3),
            "speedup": round(full_s / cached_s, 2)}


def time_to_first_audio(engine, model: str, voice: str, sentences: list[str]) -> float:
    """Seconds from pressing render on a 10-line script until its first line is playable
    (the studio streams line by line)."""
    from studio.render import iter_script, parse_for_engine

    text = "\n".join(f"{voice}: {s}" for s in (sentences * 10)[:10])
    t = time.perf_counter()
    next(iter_script(engine, parse_for_engine(engine, text), model, "griffinlim"))
    return time.perf_counter() - t


def wavenet_speed(line_seconds: tuple[float, ...] = (1.0, 3.0), naive_seconds: float = 0.25,
                  checkpoint: str | Path | None = None) -> dict:
    """WaveNet generation speed: folded batch generation of a short and a long line, fold sizes
    around the default, the short line's folds through the Python loop instead of the compiled
    one, one sequence without folding (compiled), naive sample-by-sample (one sequence in the
    Python loop), and torchaudio's WaveRNN. With `checkpoint`, its model and settings (an LPC
    model costs more a sample); without, the default config with random weights (speed does not
    depend on training)."""
    from torchaudio.models import WaveRNN

    from studio.vocoders import native
    from studio.vocoders.wavenet import WaveNet, WaveNetConfig, WaveNetVocoder

    audio = AudioConfig()
    torch.manual_seed(0)
    if checkpoint is not None:
        voc = WaveNetVocoder.from_checkpoint(checkpoint)
        model, cfg = voc.model, voc.cfg
    else:
        cfg = WaveNetConfig(n_mels=audio.n_mels, hop_length=audio.hop_length, sample_rate=audio.sample_rate)
        model = WaveNet(cfg).eval()
        voc = WaveNetVocoder(model, audio=audio)  # the post-filter too, as the engine runs it
    default_fold = cfg.fold_seconds
    folds = {}
    for fold_s in sorted({0.05, 0.1, 0.2, 0.4, 0.8, default_fold}):
        cfg.fold_seconds = fold_s
        for secs in line_seconds:
            mel = torch.randn(int(secs * audio.frames_per_second), audio.n_mels) - 4
            folds[f"{fold_s:g}s fold, {secs:g}s line"] = round(_time(lambda: voc.infer(mel.numpy()), 3) / secs, 3)
    cfg.fold_seconds = default_fold
    short = torch.randn(int(min(line_seconds) * audio.frames_per_second), audio.n_mels) - 4
    voc.native = False  # the same folds through the Python loop: what the compiled loop buys
    t_python = _time(lambda: voc.infer(short.numpy()))
    voc.native = True
    mel = torch.randn(int(max(line_seconds) * audio.frames_per_second), audio.n_mels) - 4
    n_naive = int(naive_seconds * audio.frames_per_second)
    t_naive = _time(lambda: model.generate(mel[None, :n_naive], torch.tensor([0]), native_ok=False))
    t_one = _time(lambda: model.generate(mel[None, :n_naive], torch.tensor([0])))
    wavernn = WaveRNN(upsample_scales=[5, 5, 8], n_classes=256, hop_length=audio.hop_length, n_freq=audio.n_mels,
                      n_rnn=256, n_fc=256).eval()
    with torch.no_grad():
        t_rnn = _time(lambda: wavernn.infer(mel[:n_naive].T[None]))  # (1, n_mels, T_mel)
    rtf = {secs: folds[f"{default_fold:g}s fold, {secs:g}s line"] for secs in line_seconds}
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "receptive_field": model.receptive_field,
        "layers": f"{cfg.stacks}x{cfg.layers}, {cfg.residual_channels} residual / {cfg.gate_channels} gate channels"
                  + (f", order-{cfg.lpc_order} predictor" if cfg.lpc_order else ""),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "folded_rtf": max(rtf.values()),  # the worse of a short and a long line
        "folded_rtf_by_line": {f"{k:g}s": v for k, v in rtf.items()},
        "fold_seconds": default_fold,
        "fold_sweep": folds,
        "kernel": (f"compiled C loop, {native.threads()} threads" if native.load() is not None
                   else "Python loop (no C compiler)"),
        "folded_python_rtf": round(t_python / min(line_seconds), 3),
        "unfolded_kernel_rtf": round(t_one / naive_seconds, 3),
        "naive_rtf": round(t_naive / naive_seconds, 3),
        "wavernn_rtf": round(t_rnn / naive_seconds, 3),
        "wavernn_parameters": sum(p.numel() for p in wavernn.parameters()),
    }
