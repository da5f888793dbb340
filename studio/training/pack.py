"""A compact copy of a corpus, for a machine that cannot rebuild it (a lent GPU machine).

    python -m studio.training.pack --data data/corpus --out data/pack --max-mb 20

The teacher corpus needs flite and espeak-ng to make and is hundreds of MB; a GPU machine lent
for a few minutes has neither and takes a few tens of MB. The pack holds a random, voice-balanced
subset of utterances as an LJSpeech-format folder: `metadata.csv` and 16-bit FLAC audio (lossless,
about half the size of WAV). Mels are recomputed there from the audio in seconds; the vocoder
needs no phonemes, so it trains on such a folder without espeak:

    python -m studio.training.train wavenet --data data/pack --out runs/wavenet ...
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
import shutil
from collections import defaultdict
from pathlib import Path

import soundfile as sf

from studio.training.dataset import audio_path, read_metadata

log = logging.getLogger(__name__)


def pack_corpus(data: Path, out: Path, max_mb: float, seed: int = 0) -> dict:
    """Copy utterances of every voice in turn (random order within a voice) until the pack would
    pass `max_mb`; returns {"utterances", "seconds", "mb", "voices"}."""
    items = read_metadata(data)
    by_voice: dict[str, list] = defaultdict(list)
    for it in items:
        by_voice[it.speaker].append(it)
    rng = random.Random(seed)
    for group in by_voice.values():
        rng.shuffle(group)
    if out.exists():
        shutil.rmtree(out)
    (out / "wavs").mkdir(parents=True)
    budget, used, seconds, kept = max_mb * 2**20, 0, 0.0, []
    queues = [list(g) for _, g in sorted(by_voice.items())]
    while any(queues) and used < budget:
        for q in queues:
            if not q:
                continue
            it = q.pop()
            wav, sr = sf.read(str(audio_path(data, it.id)), dtype="int16")
            dst = out / "wavs" / f"{it.id}.flac"
            sf.write(str(dst), wav, sr, subtype="PCM_16", format="FLAC")
            size = dst.stat().st_size
            if used + size > budget:
                dst.unlink()
                queues = [[]]  # full
                break
            used += size
            seconds += len(wav) / sr
            kept.append(it)
    with open(out / "metadata.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="|", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        for it in kept:
            w.writerow([it.id, it.text, it.normalized, it.speaker])
    voices = sorted({it.speaker for it in kept})
    return {"utterances": len(kept), "seconds": round(seconds, 1), "mb": round(used / 2**20, 2), "voices": voices}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Pack a voice-balanced subset of a corpus into a few MB.")
    ap.add_argument("--data", type=Path, required=True, help="LJSpeech-format corpus folder")
    ap.add_argument("--out", type=Path, required=True, help="pack folder (replaced)")
    ap.add_argument("--max-mb", type=float, default=20.0, help="size of the pack's audio")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.out.resolve() == args.data.resolve():
        raise SystemExit("--out must be a new folder, not the corpus itself")
    info = pack_corpus(args.data, args.out, args.max_mb, args.seed)
    log.info("packed %d utterances (%.0f s of audio, %s) into %s: %.1f MB", info["utterances"], info["seconds"],
             ", ".join(info["voices"]), args.out, info["mb"])


if __name__ == "__main__":
    main()
