"""Speech quality on held-out sentences, always measured beside the teacher voice.

    python -m studio eval quality --model tacotron --vocoder griffinlim --limit 20 --json
    python -m studio eval quality --model teacher            # the teachers alone
    python -m studio eval quality --model copy --vocoder griffinlim   # vocoder copy synthesis

For every voice: pocketsphinx WER of the model and of the teacher on the same sentences,
mel-cepstral distortion against the teacher's audio (after DTW) and the duration ratio; then
alignment health of the model on the hard-sentence list.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from studio.audio import AudioConfig, mel_spectrogram
from studio.eval.metrics import Recognizer, corpus_wer, mcd, pesq_wb, stoi, wer_ratio_interval
from studio.text import normalize

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets" / "sentences"


def read_list(name: str, limit: int | None = None) -> list[str]:
    lines = [s.strip() for s in (ASSETS / name).read_text(encoding="utf-8").splitlines() if s.strip()]
    return lines[:limit] if limit else lines


def teacher_audio(voice: str, text: str, audio: AudioConfig, cache: dict | None = None) -> np.ndarray:
    from studio.training.corpus import TEACHERS, synthesize_teacher

    key = (voice, text)
    if cache is not None and key in cache:
        return cache[key]
    wav = synthesize_teacher(TEACHERS[voice], normalize(text), audio)
    if cache is not None:
        cache[key] = wav
    return wav


def evaluate_quality(engine, model: str, vocoder: str = "griffinlim", voices: list[str] | None = None,
                     limit: int = 20, hard: bool = True, save_dir: Path | None = None) -> dict:
    """Run the quality eval; returns a JSON-ready dict (per voice and overall)."""
    from studio.training.corpus import TEACHERS

    recognizer = Recognizer()
    sentences = read_list("heldout.txt", limit)
    if model in ("teacher", "copy"):
        audio = AudioConfig()
        all_voices = [v for v in TEACHERS if v in (voices or ["slt", "rms", "awb", "kal16"])]
    else:
        am = engine.acoustic_model(model)
        audio = am.audio
        all_voices = voices or [s["id"] for s in am.speakers]
    result: dict = {"model": model, "vocoder": vocoder, "sentences": len(sentences), "voices": {}}
    cache: dict = {}
    for v in all_voices:
        if v not in TEACHERS:
            log.warning("voice %s has no teacher to compare with; skipped", v)
            continue
        refs, hyps_t, hyps_m, mcds, ratios, pesqs, stois, rtfs = [], [], [], [], [], [], [], []
        for i, s in enumerate(sentences):
            ref = normalize(s)
            t_wav = teacher_audio(v, s, audio, cache)
            refs.append(ref)
            hyps_t.append(recognizer.transcribe(t_wav, audio.sample_rate))
            if model == "teacher":
                continue
            if model == "copy":
                mel = mel_spectrogram(t_wav, audio).numpy()
                m_wav = engine.vocode(mel, vocoder, audio, v)
                pesqs.append(pesq_wb(t_wav, m_wav, audio.sample_rate))
                stois.append(stoi(t_wav, m_wav, audio.sample_rate))
            else:
                take = engine.synthesize(s, voice=v, model=model, vocoder=vocoder)
                m_wav = take.audio
                rtfs.append(take.timings["rtf"])
                if save_dir is not None and i < 3:
                    from studio.audio import save_wav

                    save_wav(save_dir / f"{model}_{vocoder}_{v}_{i}.wav", m_wav, audio.sample_rate)
            hyps_m.append(recognizer.transcribe(m_wav, audio.sample_rate))
            mcds.append(mcd(t_wav, m_wav, audio))
            ratios.append(len(m_wav) / max(1, len(t_wav)))
        row = {"teacher_wer": round(corpus_wer(list(zip(refs, hyps_t))), 4)}
        if model != "teacher":
            row["wer"] = round(corpus_wer(list(zip(refs, hyps_m))), 4)
            row["wer_ratio"] = round(row["wer"] / max(row["teacher_wer"], 1e-6), 3)
            row["wer_ratio_ci95"] = list(wer_ratio_interval(refs, hyps_m, hyps_t))
            row["mcd_db"] = round(float(np.mean(mcds)), 3)
            row["duration_ratio"] = round(float(np.mean(ratios)), 3)
            row["examples"] = [{"ref": r, "teacher": t, "model": m}
                               for r, t, m in list(zip(refs, hyps_t, hyps_m))[:3]]
        if pesqs:
            row["pesq_wb"] = round(float(np.mean(pesqs)), 3)
            row["stoi"] = round(float(np.mean(stois)), 4)
        if rtfs:
            row["rtf"] = round(float(np.mean(rtfs)), 3)
        result["voices"][v] = row
        log.info("%s: %s", v, {k: x for k, x in row.items() if k != "examples"})
    if hard and model not in ("teacher", "copy"):
        result["hard"] = hard_sentence_health(engine, model, all_voices)
    if save_dir is not None and model not in ("teacher", "copy"):
        save_alignment_figure(engine, model, all_voices[0], save_dir.parent / f"align_{model}.png")
    rows = result["voices"].values()
    result["overall"] = {k: round(float(np.mean([r[k] for r in rows])), 4)
                         for k in ("wer", "teacher_wer", "wer_ratio", "mcd_db", "pesq_wb", "stoi")
                         if rows and all(k in r for r in rows)}
    return result


def hard_sentence_health(engine, model: str, voices: list[str]) -> dict:
    """Alignment health on the hard list, without retakes, so failures are the model's own; each
    failed line is then made again with the engine's retakes (pinned to predicted durations where the
    model has them, tighter window, new seed, clause by clause), and `failures_after_retakes`
    counts what a studio user would still be handed."""
    sentences = read_list("hard.txt")
    failures, after_retakes, total, details = 0, 0, 0, []
    focus, mono, skips, repeats, runaways = [], [], 0, 0, 0
    mended_by: dict[str, int] = {}  # which retakes turned a failed take healthy, and how often
    for v in voices:
        for s in sentences:
            take = engine.synthesize(s, voice=v, model=model, retake=False)
            total += 1
            for seg in take.segments:
                h = seg.health
                focus.append(h["focus_rate"])
                mono.append(h["monotonicity"])
                skips += len(h["skips"])
                repeats += len(h["repeats"])
                runaways += bool(h["runaway"])
            if not take.ok:
                failures += 1
                again = engine.synthesize(s, voice=v, model=model, retake=True)
                after_retakes += not again.ok
                retakes = [seg.retake for seg in again.segments if seg.retake]
                if again.ok:
                    key = "; ".join(retakes)
                    mended_by[key] = mended_by.get(key, 0) + 1
                details.append({"voice": v, "text": s, "verdict": take.health["verdict"],
                                "after_retakes": again.health["verdict"], "retakes": retakes})
    return {"sentences": total, "failures": failures, "failures_after_retakes": after_retakes, "skips": skips,
            "repeats": repeats, "runaways": runaways,
            "mean_focus_rate": round(float(np.mean(focus)), 4), "mean_monotonicity": round(float(np.mean(mono)), 4),
            "mended_by": mended_by, "details": details[:20]}


def save_alignment_figure(engine, model: str, voice: str, path: Path) -> None:
    """One alignment per model for the report: a held-out sentence, with word boundaries."""
    from studio.plots import plot_alignment, save

    take = engine.synthesize(read_list("heldout.txt", 1)[0], voice=voice, model=model)
    seg = take.segments[0]
    sps = len(seg.mel) / max(1, seg.timing_alignment.shape[0]) * engine.acoustic_model(model).audio.hop_length \
        / take.sample_rate
    save(plot_alignment(seg.timing_alignment, seg.tokens, f"{model}, {voice}: {seg.health['verdict']}", sps,
                        seg.words), path)
