"""Teacher-voice corpus: classical synthesizers speak our sentences, our models learn from them.

    python -m studio.training.corpus --out data/corpus --voices slt rms awb kal16 --sentences 1500

Writes an LJSpeech-layout folder (`wavs/`, `metadata.csv` with id|text|normalised text|speaker)
that `studio.training.dataset` reads like any user-brought dataset. Each voice speaks its own
seeded sample of the training sentences, so the set of texts is wider than one voice's. The
teacher is fed our own normalised text, so the audio says exactly what our front-end will
later ask the models to say. Reruns skip utterances already on disk (resumable).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import random
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.audio import AudioConfig, load_wav, normalise_loudness, save_wav, trim_silence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherVoice:
    id: str  # stable voice id used everywhere in the studio
    name: str  # display name
    engine: str  # "flite", "festival" or "espeak"
    engine_voice: str  # the engine's own name for it
    description: str


TEACHERS: dict[str, TeacherVoice] = {
    v.id: v
    for v in [
        TeacherVoice("slt", "Sally (US female)", "flite", "slt", "CMU ARCTIC slt, flite clustergen"),
        TeacherVoice("rms", "Richard (US male)", "flite", "rms", "CMU ARCTIC rms, flite clustergen"),
        TeacherVoice("awb", "Alan (Scottish male)", "flite", "awb", "CMU ARCTIC awb, flite clustergen"),
        TeacherVoice("kal16", "Kal (US male)", "flite", "kal16", "CMU kal diphone voice, 16 kHz"),
        TeacherVoice("kald", "Kal diphone (festival)", "festival", "kal_diphone", "festival kal_diphone"),
        TeacherVoice("klatt", "Klatt (espeak-ng)", "espeak", "en-us+klatt", "espeak-ng formant voice"),
    ]
}


def teacher_available(voice: TeacherVoice) -> bool:
    exe = {"flite": "flite", "festival": "text2wave", "espeak": "espeak-ng"}[voice.engine]
    return shutil.which(exe) is not None


def synthesize_teacher(voice: TeacherVoice, text: str, cfg: AudioConfig) -> np.ndarray:
    """Speak `text` with a teacher voice; returns trimmed, loudness-normalised audio at cfg's rate."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "t.wav"
        if voice.engine == "flite":
            cmd = ["flite", "-voice", voice.engine_voice, "-t", text, "-o", str(out)]
            subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        elif voice.engine == "festival":
            src = Path(tmp) / "t.txt"
            src.write_text(text)
            cmd = ["text2wave", "-eval", f"(voice_{voice.engine_voice})", str(src), "-o", str(out)]
            subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        else:
            cmd = ["espeak-ng", "-v", voice.engine_voice, "-w", str(out), text]
            subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        wav, _ = load_wav(out, cfg.sample_rate)
    wav = trim_silence(wav, cfg.trim_top_db, sample_rate=cfg.sample_rate)
    return normalise_loudness(wav, cfg.ref_db)


def read_sentences(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]


def pick_sentences(pool: list[str], n: int, seed: int) -> list[str]:
    """A seeded sample that leans towards longer sentences (WordNet is full of 3-word glosses)."""
    rng = random.Random(seed)
    weights = [min(len(s.split()), 14) for s in pool]
    chosen: dict[str, None] = {}
    while len(chosen) < min(n, len(pool)):
        chosen.update(dict.fromkeys(rng.choices(pool, weights=weights, k=n - len(chosen))))
    return list(chosen)[:n]


def utterance_id(voice: str, text: str) -> str:
    return f"{voice}_{hashlib.sha1(text.encode()).hexdigest()[:10]}"


def build_corpus(
    out: Path,
    voices: list[str],
    sentences: list[str],
    per_voice: int,
    seed: int = 0,
    cfg: AudioConfig = AudioConfig(),
    workers: int = 2,
) -> Path:
    from tqdm import tqdm

    from studio.text.normalize import normalize

    wav_dir = out / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for k, vid in enumerate(voices):
        if vid not in TEACHERS:
            raise SystemExit(f"unknown teacher voice {vid!r}; known: {', '.join(TEACHERS)}")
        voice = TEACHERS[vid]
        if not teacher_available(voice):
            raise SystemExit(f"teacher voice {vid!r} needs {voice.engine}, which is not installed")
        for text in pick_sentences(sentences, per_voice, seed * 1000 + k):
            norm = normalize(text)
            if norm:
                jobs.append((voice, text, norm))

    def run(job):
        voice, text, norm = job
        uid = utterance_id(voice.id, text)
        path = wav_dir / f"{uid}.wav"
        if not path.exists():
            wav = synthesize_teacher(voice, norm, cfg)
            tmp = path.with_suffix(".tmp.wav")
            save_wav(tmp, wav, cfg.sample_rate)
            tmp.rename(path)  # atomic: a killed run never leaves half a file behind
        return uid, text, norm, voice.id

    rows = []
    with ThreadPoolExecutor(workers) as pool:
        for row in tqdm(pool.map(run, jobs), total=len(jobs), desc="teacher audio", unit="utt"):
            rows.append(row)
    with open(out / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="|", quoting=csv.QUOTE_NONE, escapechar="\\")
        w.writerows(rows)
    log.info("wrote %d utterances to %s", len(rows), out)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build a teacher-voice corpus in LJSpeech layout.")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--voices", nargs="+", default=["slt", "rms", "awb", "kal16"])
    ap.add_argument("--sentences", type=int, default=1500, help="sentences per voice")
    ap.add_argument("--source", type=Path, default=Path("assets/sentences/train.txt"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build_corpus(args.out, args.voices, read_sentences(args.source), args.sentences, args.seed, workers=args.workers)


if __name__ == "__main__":
    main()
