"""Build the shipped sentence lists from offline sources (Debian's wordnet and fortunes).

    python -m studio.training.sentences --out assets/sentences

WordNet's glosses carry about 28,000 example sentences in double quotes; the fortune files add
questions, names and numbers. Sentences are cleaned, kept at 3 to 25 words, de-duplicated,
shuffled with a fixed seed and split into a training list and a held-out list that no model
trains on. The lists are committed, so this only needs rerunning to change them.
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

WORDNET_FILES = [f"/usr/share/wordnet/data.{p}" for p in ("noun", "verb", "adj", "adv")]
FORTUNE_DIR = Path("/usr/share/games/fortunes")

_ALLOWED = re.compile(r"^[A-Za-z0-9 ,.;:!?'\-$%&]+$")


def wordnet_sentences() -> list[str]:
    out = []
    for f in WORDNET_FILES:
        if Path(f).exists():
            text = Path(f).read_text(encoding="latin-1")
            out.extend(re.findall(r'"([^"]{8,200})"', text))
    return out


def fortune_sentences() -> list[str]:
    out = []
    if not FORTUNE_DIR.exists():
        return out
    for f in sorted(FORTUNE_DIR.iterdir()):
        if f.suffix or not f.is_file():
            continue
        for block in f.read_text(encoding="utf-8", errors="ignore").split("\n%\n"):
            if "--" in block or "\t" in block:  # attributions and verse layouts read badly
                block = block.split("--")[0]
            flat = " ".join(block.split())
            out.extend(re.split(r"(?<=[.!?])\s+", flat))
    return out


def clean(sentence: str) -> str | None:
    s = " ".join(sentence.replace("`", "'").split()).strip(" -;:,")
    if not s or not _ALLOWED.match(s):
        return None
    words = s.split()
    if not 3 <= len(words) <= 25:
        return None
    if sum(w.isupper() and len(w) > 1 for w in words) > 2:  # shouting, headings
        return None
    s = s[0].upper() + s[1:]
    if s[-1] not in ".!?":
        s += "."
    return s


def build(seed: int = 1234, heldout: int = 300) -> tuple[list[str], list[str]]:
    seen: set[str] = set()
    pool: list[str] = []
    for raw in wordnet_sentences() + fortune_sentences():
        s = clean(raw)
        if s and s.lower() not in seen:
            seen.add(s.lower())
            pool.append(s)
    random.Random(seed).shuffle(pool)
    return pool[heldout:], pool[:heldout]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("assets/sentences"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--heldout", type=int, default=300)
    args = ap.parse_args(argv)
    train, held = build(args.seed, args.heldout)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train.txt").write_text("\n".join(train) + "\n")
    (args.out / "heldout.txt").write_text("\n".join(held) + "\n")
    print(f"{len(train)} training and {len(held)} held-out sentences in {args.out}")


if __name__ == "__main__":
    main()
