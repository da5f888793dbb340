import json
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from studio.text import Frontend, TextError, Vocab, split_sentences
from studio.text.g2p import G2P, phonemize_batch
from tests.conftest import ROOT


def test_phonemes_keep_punctuation_as_pause_tokens():
    (p,) = phonemize_batch(["Hello world, how are you?"])
    assert "," in p and p.endswith("?")
    assert "h" in p and "w" in p


def test_lexicon_overrides_a_word():
    plain = G2P()("I like this gif.")
    custom = G2P({"gif": "dʒˈɪf"})("I like this gif.")
    assert "dʒˈɪf" in custom
    assert custom != plain
    assert custom.endswith(".")


def test_vocab_round_trip_and_unknown_symbols_dropped():
    v = Vocab.phonemes()
    ids = v.encode("həlˈoʊ")
    assert ids[-1] == v.eos_id and v.pad_id not in ids
    assert v.decode(ids) == "həlˈoʊ"
    assert v.tokens("a☃b") == ["a", "b", "~"]
    assert Vocab(v.to_list()) == v
    with pytest.raises(ValueError):
        Vocab(["a", "b"])


def test_every_espeak_symbol_of_the_corpus_is_in_the_vocab():
    from studio.eval.quality import read_list

    vocab = Vocab.phonemes()
    sentences = read_list("heldout.txt", 100) + read_list("hard.txt")
    from studio.text import normalize

    unknown = set()
    for p in phonemize_batch([normalize(s) for s in sentences]):
        unknown |= {ch for ch in p if ch not in vocab._ids}
    assert not unknown, unknown


def test_split_sentences_and_long_lines():
    assert split_sentences("One. Two! Three? Four") == ["One.", "Two!", "Three?", "Four"]
    assert split_sentences("No! he said. Yes? she asked.") == ["No! he said.", "Yes? she asked."]
    long = ", ".join(["a clause of several words"] * 30) + "."
    parts = split_sentences(long, max_chars=100)
    assert all(len(p) <= 100 for p in parts)
    assert " ".join(parts).replace(" ", "") == long.replace(" ", "")
    words = " ".join(["word"] * 200)
    assert all(len(p) <= 50 for p in split_sentences(words, max_chars=50))


def test_frontend_prepare():
    fe = Frontend(Vocab.phonemes())
    out = fe.prepare("Dr. Smith paid $5. Then he left!")
    assert [p.normalized for p in out] == ["Doctor Smith paid five dollars.", "Then he left!"]
    assert all(p.ids[-1] == 1 and len(p.ids) == len(p.tokens) for p in out)
    chars = Frontend(Vocab.characters(), "characters").prepare("Hi 2 you.")
    assert chars[0].symbols == "hi two you."
    with pytest.raises(TextError):
        fe.prepare("😀 ☃ 你好")


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_frontend_never_fails_unexpectedly(text):
    fe = Frontend(Vocab.phonemes())
    try:
        out = fe.prepare(text)
    except TextError:
        return
    assert out and all(len(p.ids) >= 2 for p in out)


def test_text_cli_json():
    out = subprocess.run([sys.executable, "-m", "studio", "text", "Call 555-1234 at 9:30 a.m., Dr. Who!", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert "nine thirty" in data["normalized"] and "Doctor" in data["normalized"]
    assert len(data["phonemes"]) == len(data["sentences"]) >= 1


def test_project_lexicon_respells_and_overrides_phonemes():
    from studio.text import Frontend, Vocab, respell

    assert respell("Run the SQL, sql-ish and SQLite.", {"SQL": "sequel"}) == "Run the sequel, sequel-ish and SQLite."
    fe = Frontend(Vocab.phonemes())
    plain = fe.prepare("The gif is here.")[0]
    said = fe.prepare("The gif is here.", lexicon={"gif": "/dʒˈɪf/", "here": "hair"})[0]
    assert said.normalized == "The gif is hair."
    assert "dʒˈɪf" in said.symbols and "dʒˈɪf" not in plain.symbols
    assert said.symbols != plain.symbols
