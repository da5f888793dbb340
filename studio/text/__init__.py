"""Text front-end: normalise -> split into sentences -> phonemes -> ids."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from studio.text.normalize import TextError, normalize, unreadable, unreadable_warning
from studio.text.split import split_sentences
from studio.text.vocab import Vocab

__all__ = ["TextError", "normalize", "unreadable", "unreadable_warning", "split_sentences", "Vocab", "Frontend",
           "Prepared", "respell", "split_lexicon"]


def split_lexicon(lexicon: dict[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """A project's pronunciations -> (respellings, phonemes): "/dʒˈɪf/" is phonemes, the rest respellings."""
    respellings, phonemes = {}, {}
    for word, value in (lexicon or {}).items():
        if len(value) > 2 and value.startswith("/") and value.endswith("/"):
            phonemes[word.lower()] = value[1:-1].strip()
        else:
            respellings[word] = value
    return respellings, phonemes


def respell(text: str, respellings: dict[str, str]) -> str:
    """Replace whole words (case-insensitive) by their respellings, longest words first."""
    for word in sorted(respellings, key=len, reverse=True):
        text = re.sub(rf"(?<![\w']){re.escape(word)}(?![\w'])", lambda m, v=respellings[word]: v, text,
                      flags=re.IGNORECASE)
    return text


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

    def symbols(self, normalized: str, phonemes: dict[str, str] | None = None) -> str:
        if self.kind == "characters":
            return normalized.lower()
        return self.g2p.phonemize(normalized, phonemes)

    def prepare(self, text: str, max_sentence_chars: int = 300,
                lexicon: dict[str, str] | None = None) -> list[Prepared]:
        """Split `text` into sentences and prepare each; raises TextError if nothing is speakable.

        `lexicon` holds this call's pronunciations (a script's `@say` lines): respellings apply
        to the raw text, phonemes ("/.../") to words after normalisation; a character model
        has no use for phonemes and says the word as spelled."""
        respellings, phonemes = split_lexicon(lexicon)
        if respellings:
            text = respell(text, respellings)
        out = []
        for sentence in split_sentences(normalize(text), max_chars=max_sentence_chars):
            symbols = self.symbols(sentence, phonemes)
            tokens = self.vocab.tokens(symbols)
            if len(tokens) <= 1:
                continue
            out.append(Prepared(sentence, symbols, tokens, self.vocab.encode(symbols)))
        if not out:
            raise TextError("nothing speakable in the text (English letters or numbers are needed)")
        return out
