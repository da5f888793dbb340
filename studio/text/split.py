"""Sentence splitting for long text.

Runs after normalisation, so abbreviation periods are already gone. A mark followed by a
lower-case word does not end a sentence either ('"No!" he said'): cutting there would give each
half a sentence's falling tune and a pause. Sentences longer than `max_chars` are cut at clause
punctuation, then at word boundaries: attention models degrade on lines much longer than the
ones they were trained on.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?![a-z])")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def split_sentences(text: str, max_chars: int = 300) -> list[str]:
    sentences = []
    for sent in _SENTENCE_END.split(text.strip()):
        sent = sent.strip()
        if sent:
            sentences.extend(_split_long(sent, max_chars))
    return sentences


def _split_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    chunks: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        if chunks and len(chunks[-1]) + 1 + len(clause) <= max_chars:
            chunks[-1] += " " + clause
        else:
            chunks.append(clause)
    out = []
    for chunk in chunks:
        while len(chunk) > max_chars:
            cut = chunk.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            out.append(chunk[:cut].strip())
            chunk = chunk[cut:].strip()
        if chunk:
            out.append(chunk)
    return out
