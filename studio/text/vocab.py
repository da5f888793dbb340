"""Symbol <-> id tables. A `Vocab` travels inside every checkpoint, so ids never drift."""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

PAD = "_"
EOS = "~"
PUNCTUATION = list(",.!?;:") + [" "]
LETTERS = list("abcdefghijklmnopqrstuvwxyz'-")
# Every symbol espeak-ng's en-us voice emits with stress marks, one character each (as piper
# does): diphthongs and affricates become two tokens, which the encoder learns to join.
IPA = list("aeiouæɐɑɒɔəɚɛɜɝɪɨʊʌᵻɾɹɡŋθðʃʒʔçxɣɬʎɲʁʀʲbdfhjklmnpstvwzː ˈˌ̩̃") + ["ɫ", "r", "c", "q", "y", "ɯ", "ø", "œ", "ɵ", "ɘ", "ɤ", "ɞ"]


class Vocab:
    """Maps symbols to ids. id 0 is padding; every sequence ends with EOS."""

    def __init__(self, symbols: Iterable[str]):
        self.symbols: list[str] = list(dict.fromkeys(symbols))
        if self.symbols[:2] != [PAD, EOS]:
            raise ValueError("a Vocab starts with the pad and end-of-sequence symbols")
        self._ids = {s: i for i, s in enumerate(self.symbols)}
        self._warned: set[str] = set()

    @classmethod
    def phonemes(cls) -> "Vocab":
        return cls([PAD, EOS] + PUNCTUATION + IPA)

    @classmethod
    def characters(cls) -> "Vocab":
        return cls([PAD, EOS] + PUNCTUATION + LETTERS)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def eos_id(self) -> int:
        return 1

    def __len__(self) -> int:
        return len(self.symbols)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.symbols == other.symbols

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._ids

    def tokens(self, text: str) -> list[str]:
        """The symbols of `text` the vocab knows, plus EOS (unknown ones are dropped)."""
        out = []
        for ch in text:
            if ch in self._ids:
                out.append(ch)
            elif ch not in self._warned:
                self._warned.add(ch)
                log.warning("dropping symbol %r that the model was not trained on", ch)
        return out + [EOS]

    def encode(self, text: str) -> list[int]:
        return [self._ids[t] for t in self.tokens(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.symbols[i] for i in ids if i not in (self.pad_id, self.eos_id))

    def to_list(self) -> list[str]:
        return list(self.symbols)
