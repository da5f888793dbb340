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
import json
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
    pass `max_mb`; returns what it also writes to `pack.json` (utterances, seconds, MB, voices).
    An existing `out` is replaced only if it is an earlier pack."""
    items = read_metadata(data)
    by_voice: dict[str, list] = defaultdict(list)
    for it in items:
        by_voice[it.speaker].append(it)
    rng = random.Random(seed)
    for group in by_voice.values():
        rng.shuffle(group)
    if out.exists() and any(out.iterdir()):
        if not (out / "pack.json").exists():
            raise SystemExit(f"{out} exists and is not a pack: choose a new folder")
        shutil.rmtree(out)  # an earlier pack, replaced
    (out / "wavs").mkdir(parents=True)
    queues = [g for _, g in sorted(by_voice.items())]
    in_turn = [q[k] for k in range(max(map(len, queues), default=0)) for q in queues if k < len(q)]
    budget, used, seconds, kept = max_mb * 2**20, 0, 0.0, []
    for it in in_turn:
        wav, sr = sf.read(str(audio_path(data, it.id)), dtype="int16")
        dst = out / "wavs" / f"{it.id}.flac"
        sf.write(str(dst), wav, sr, subtype="PCM_16", format="FLAC")
        size = dst.stat().st_size
        if used + size > budget:
            dst.unlink()
            break
        used += size
        seconds += len(wav) / sr
        kept.append(it)
    with open(out / "metadata.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="|", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        for it in kept:
            w.writerow([it.id, it.text, it.normalized, it.speaker])
    info = {"source": str(data), "utterances": len(kept), "seconds": round(seconds, 1), "mb": round(used / 2**20, 2),
            "voices": sorted({it.speaker for it in kept}), "seed": seed}
    (out / "pack.json").write_text(json.dumps(info, indent=1))
    return info


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Pack a voice-balanced subset of a corpus into a few MB.")
    ap.add_argument("--data", type=Path, required=True, help="LJSpeech-format corpus folder")
    ap.add_argument("--out", type=Path, required=True, help="new folder, or an earlier pack to replace")
    ap.add_argument("--max-mb", type=float, default=20.0, help="size of the pack's audio")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    info = pack_corpus(args.data, args.out, args.max_mb, args.seed)
    log.info("packed %d utterances (%.0f s of audio, %s) into %s: %.1f MB", info["utterances"], info["seconds"],
             ", ".join(info["voices"]), args.out, info["mb"])


if __name__ == "__main__":
    main()
