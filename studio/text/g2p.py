"""Grapheme-to-phoneme conversion with espeak-ng (through phonemizer and espeakng-loader).

espeakng-loader ships the espeak-ng shared library and its data inside a wheel, so G2P needs
no Debian package at run time. Punctuation is kept: the acoustic models read commas and full
stops as pause and intonation cues.
"""

from __future__ import annotations

import logging
import os
import re
import threading

log = logging.getLogger(__name__)

_PUNCT = ",.!?;:"
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\-]*")

_backend = None
_backend_lock = threading.Lock()


def _get_backend():
    """One espeak backend per process: creating it costs ~50 ms and espeak is not re-entrant."""
    global _backend
    if _backend is None:
        import espeakng_loader
        from phonemizer.backend import EspeakBackend
        from phonemizer.backend.espeak.wrapper import EspeakWrapper

        EspeakWrapper.set_library(espeakng_loader.get_library_path())
        os.environ.setdefault("ESPEAK_DATA_PATH", espeakng_loader.get_data_path())
        EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
        logging.getLogger("phonemizer").setLevel(logging.ERROR)
        _backend = EspeakBackend(
            "en-us",
            preserve_punctuation=True,
            punctuation_marks=_PUNCT,
            with_stress=True,
            language_switch="remove-flags",
            logger=logging.getLogger("phonemizer"),
        )
    return _backend


def phonemize_batch(texts: list[str]) -> list[str]:
    """Phonemize many normalised texts in one espeak call (much faster than one by one)."""
    if not texts:
        return []
    with _backend_lock:
        out = _get_backend().phonemize(texts, strip=True, njobs=1)
    return [_tidy(p) for p in out]


def _tidy(phonemes: str) -> str:
    phonemes = re.sub(r"\s+", " ", phonemes).strip()
    return re.sub(r" ([,.!?;:])", r"\1", phonemes)


class G2P:
    """Text (already normalised) to a phoneme string, with a user lexicon that wins over espeak.

    The lexicon maps a lowercase word to its phonemes in espeak's IPA, e.g.
    ``{"gif": "dʒˈɪf"}``; words not in it go through espeak in their sentence context, so the
    rest of the sentence keeps its natural stress and liaison.
    """

    def __init__(self, lexicon: dict[str, str] | None = None):
        self.lexicon = {k.lower(): v for k, v in (lexicon or {}).items()}

    def __call__(self, text: str) -> str:
        return self.phonemize(text)

    def phonemize(self, text: str, extra: dict[str, str] | None = None) -> str:
        """`extra`: pronunciations for this call only (lowercase word -> phonemes), over the lexicon."""
        if not text.strip():
            return ""
        lexicon = {**self.lexicon, **{k.lower(): v for k, v in extra.items()}} if extra else self.lexicon
        if not lexicon:
            return phonemize_batch([text])[0]
        # Split into runs between lexicon words; phonemize the runs together in one call.
        pieces: list[tuple[bool, str]] = []
        last = 0
        for m in _WORD_RE.finditer(text):
            if m.group(0).lower() in lexicon:
                pieces.append((False, text[last : m.start()]))
                pieces.append((True, lexicon[m.group(0).lower()]))
                last = m.end()
        pieces.append((False, text[last:]))
        runs = [p for is_lex, p in pieces if not is_lex and p.strip()]
        phon_runs = iter(phonemize_batch(runs))
        out = []
        for is_lex, p in pieces:
            if is_lex:
                out.append(p)
            elif p.strip():
                lead = p[0] if p[0] in _PUNCT else ""
                run = next(phon_runs)
                out.append(lead + run if lead and not run.startswith(lead) else run)
        return _tidy(" ".join(out))
