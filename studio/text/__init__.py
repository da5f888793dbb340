"""Text front-end: normalise -> split into sentences -> phonemes -> ids."""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.text.normalize import TextError, normalize
from studio.text.split import split_sentences
from studio.text.vocab import Vocab

__all__ = ["TextError", "normalize", "split_sentences", "Vocab", "Frontend", "Prepared"]


@dataclass
class Prepared:
    """One sentence as each stage of the front-end sees it."""

    normalized: str  # the sentence as words the model will say
    symbols: str  # phonemes (or lowercase characters for a character model)
    tokens: list[str] = field(default_factory=list)  # what the alignment's text axis shows
    ids: list[int] = field(default_factory=list)


class Frontend:
    """Turns raw text into model inputs for one vocab ("phonemes" or "characters")."""

    def __init__(self, vocab: Vocab, kind: str = "phonemes", lexicon: dict[str, str] | None = None):
        from studio.text.g2p import G2P

        if kind not in ("phonemes", "characters"):
            raise ValueError(f"unknown front-end kind {kind!r}")
        self.vocab = vocab
        self.kind = kind
        self.g2p = G2P(lexicon)

    def symbols(self, normalized: str) -> str:
        if self.kind == "characters":
            return normalized.lower()
        return self.g2p(normalized)

    def prepare(self, text: str, max_sentence_chars: int = 300) -> list[Prepared]:
        """Split `text` into sentences and prepare each; raises TextError if nothing is speakable."""
        out = []
        for sentence in split_sentences(normalize(text), max_chars=max_sentence_chars):
            symbols = self.symbols(sentence)
            tokens = self.vocab.tokens(symbols)
            if len(tokens) <= 1:
                continue
            out.append(Prepared(sentence, symbols, tokens, self.vocab.encode(symbols)))
        if not out:
            raise TextError("nothing speakable in the text (English letters or numbers are needed)")
        return out
