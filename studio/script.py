"""Scripts, subtitles and timing plans: the text side of a dubbing session.

Everything here is plain Python, so the CLI and the UI can check a script or a subtitle file
(and point at the bad line) before a single model is loaded:

- the script language: `parse_script` -> `Script` (cast + one `Line` per take), `Script.to_text`;
- SRT and WebVTT in and out: `parse_subtitles`, `parse_srt`, `parse_vtt`, `write_srt`,
  `write_vtt`, `check_cues`;
- slot fitting for dubbing: `fit_rate`, `place_cues` (numbers only; the engine does the audio).

Script language, one source line per take::

    # comments start with '#'; blank lines are ignored
    @cast Narrator = slt
    @cast Anna = rms speed=1.1 pitch=-2
    Narrator: It was a dark night. [pause 0.5s] Very dark.
    Anna: [speed=0.9] Who's there?
    [voice=slt pitch=1] No speaker, settings inline.<break time="300ms"/>And on.
    [pause 1.5s]

Pronunciations (the project's dictionary, like a studio's pronunciation rules)::

    @say SQL = sequel          # a respelling, applied to the text before anything else
    @say gif = /dʒˈɪf/         # phonemes in espeak's IPA between slashes (phoneme models)

`@cast` and `@say` lines come before the first spoken line. A line is `[Speaker:] [settings]... content`,
where content mixes text with `[pause 0.5s]`, `[pause 500ms]` or `<break time="500ms"/>`; a
line of pauses only is a `Line` whose segments are all `Pause` (and which has no voice).
Any other `[...]` or `<tag>` is an error, as is a speaker that is neither in the cast nor a
voice: a typo must not fall back silently to a default voice. Case does not count ("ANNA:" is
the cast's Anna, "SLT:" the voice slt), as screenplays write names in capitals, and a voice may
be called by its name as the voice list shows it ("Sally:", "@cast Anna = Sally"). A speaker is
one word followed by ':' and a space ("Anna: hi"), so "He said: hi" is text; "Note: hi" names the speaker
"Note" and, unless that is a cast name or voice, is an error (put a speaker first to say it:
"Narrator: Note: hi").
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from studio.errors import ScriptError, SubtitleError

# ---------------------------------------------------------------------------------------------
# Script model

SETTING_KEYS = ("voice", "speed", "pitch", "model", "vocoder")  # also the order to_text writes
SETTING_RANGES = {"speed": (0.5, 2.0), "pitch": (-12.0, 12.0)}  # speed factor; pitch semitones
MAX_PAUSE_SECONDS = 60.0  # longer is almost surely a typo (500 where 500ms was meant)


@dataclass(frozen=True)
class Speech:
    """Text to synthesize; whitespace is collapsed, never empty."""

    text: str


@dataclass(frozen=True)
class Pause:
    """Silence, in seconds."""

    seconds: float


Segment = Speech | Pause


@dataclass
class CastEntry:
    """`@cast NAME = VOICE key=value ...`: a speaker's voice and default settings."""

    name: str
    voice: str
    settings: dict[str, float | str] = field(default_factory=dict)  # speed/pitch/model/vocoder

    def to_text(self) -> str:
        return " ".join([f"@cast {self.name} = {self.voice}", *_settings_tokens(self.settings)]).rstrip()


@dataclass
class Line:
    """One take: the resolved voice and settings, and its text and pauses in order.

    `voice` and `settings` are what the engine should use, already resolved: an inline
    `voice=` wins over the speaker's cast voice, which wins over a speaker that is itself a
    voice id, which wins over `default_voice`; inline settings override the cast's. `voice`
    is None only when nothing named one (the engine's default then applies) or when the line
    is only pauses: a pause has no voice, so pause-only lines always have `voice=None` and
    `settings={}`. `settings` holds only the keys that were set (never "voice").

    `number` (the source line) is left out of equality so that a script equals its own
    rewritten `to_text()`, whose line numbers differ once comments are dropped.
    """

    number: int = field(compare=False)  # 1-based line in the source text
    speaker: str | None
    voice: str | None
    settings: dict[str, float | str]
    segments: list[Segment]

    @property
    def text(self) -> str:
        """All spoken text, pauses dropped (for display, search, word counts)."""
        return " ".join(s.text for s in self.segments if isinstance(s, Speech))

    @property
    def is_pause(self) -> bool:
        return not any(isinstance(s, Speech) for s in self.segments)


@dataclass
class Script:
    """A parsed script: the cast, the takes in order, and the pronunciations.

    `lexicon` maps a word to a respelling ("sequel") or to phonemes between slashes
    ("/dʒˈɪf/"); the engine's `synthesize(..., lexicon=)` takes it as is.
    """

    cast: dict[str, CastEntry]
    lines: list[Line]
    lexicon: dict[str, str] = field(default_factory=dict)

    def to_text(self) -> str:
        """Canonical text: cast first, one line per take, settings only where they differ.

        Comments and blank lines are not kept. A line without a speaker spells out its voice,
        so the text stands alone without the `default_voice` it was parsed with; with the
        same arguments, `parse_script(s.to_text()) == s`.
        """
        out = [entry.to_text() for entry in self.cast.values()]
        out += [f"@say {word} = {value}" for word, value in self.lexicon.items()]
        if out:
            out.append("")
        out.extend(self._line_text(line) for line in self.lines)
        return "\n".join(out) + "\n"

    def _line_text(self, line: Line) -> str:
        entry = self.cast.get(line.speaker) if line.speaker else None
        implied_voice = entry.voice if entry else line.speaker
        defaults = entry.settings if entry else {}
        written = {k: v for k, v in line.settings.items() if defaults.get(k) != v}
        if line.voice is not None and line.voice != implied_voice:
            written["voice"] = line.voice
        parts = [f"{line.speaker}:"] if line.speaker else []
        if written:
            parts.append("[" + " ".join(_settings_tokens(written)) + "]")
        for seg in line.segments:
            parts.append(seg.text if isinstance(seg, Speech) else f"[pause {_format_number(seg.seconds)}s]")
        return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# Script parser

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(ms|s)")
_NAME = re.compile(r"[\w.-]+")  # voice, model and vocoder ids
_SPEAKER_NAME = r"[^\W\d][\w.'-]{0,39}"  # one word starting with a letter
# A screenplay's extension after the name is a note for the actor, not part of it: "ANNA (V.O.):",
# "JOHN (CONT'D):"
_SPEAKER = re.compile(rf"(?P<name>{_SPEAKER_NAME})(?:\s*\([^()\n]{{1,24}}\))?\s*:(?=\s|$)")


def line_speaker(line: str) -> str | None:
    """The speaker label a script line starts with ("ANNA (V.O.): Hi." -> "ANNA"), or None."""
    m = _SPEAKER.match(line.strip())
    return m["name"] if m else None


_CAST = re.compile(r"@cast\s+(?P<name>[^\s=]+)\s*=\s*(?P<voice>[^\s=]+)(?P<rest>(?:\s.*)?)")
_SAY = re.compile(r"@say\s+(?P<word>[^\s=]+)\s*=\s*(?P<value>.*?)\s*")
_SAY_WORD = re.compile(r"[^\W_][\w'.-]{0,39}")
_RESPELLING = re.compile(r"[^\W\d_][\w' -]{0,99}")  # letters first; words, apostrophes, hyphens, spaces
_BREAK = re.compile(r"break\s+time\s*=\s*(?P<q>[\"']?)(?P<dur>[^\"'\s/>]+)(?P=q)\s*/?\s*")
# A tag, or the start of one that never closes. '<' is only a tag before a letter or '/',
# so "a < b" stays text; '[' and ']' are always tag syntax.
_TAG = re.compile(r"\[(?P<square>[^\[\]]*)\]|<(?P<angle>/?[A-Za-z][^<>]*)>|(?P<bad>[\[\]]|</?[A-Za-z])")


@dataclass(frozen=True)
class _Known:
    """The ids each setting may take; None skips that check."""

    voice: frozenset[str] | None
    model: frozenset[str] | None
    vocoder: frozenset[str] | None
    voice_names: dict[str, str] = field(default_factory=dict)  # casefolded voice name -> voice id

    def voice_id(self, name: str) -> str | None:
        """The voice `name` means: an id, an id in other case ("SLT"), or a voice's name ("Sally")."""
        if self.voice is None or name in self.voice:
            return name
        by_fold = {v.casefold(): v for v in self.voice}
        return by_fold.get(name.casefold()) or self.voice_names.get(name.casefold())


def parse_script(
    text: str,
    voices: Iterable[str] | None = None,
    default_voice: str | None = None,
    *,
    models: Iterable[str] | None = None,
    vocoders: Iterable[str] | None = None,
    max_line_chars: int = 2000,
    max_lines: int = 1000,
    voice_names: dict[str, str] | None = None,
) -> Script:
    """Read a script; raise `ScriptError` naming the line of the first problem.

    `voices`, `models` and `vocoders` are the ids the engine has; each check is skipped when
    its argument is None. `max_lines` bounds the takes (comments and cast do not count) and
    `max_line_chars` every source line, so a pasted novel fails fast, before synthesis.
    `voice_names` maps the voices' names to their ids ({"Sally": "slt"}), so "Sally:" or
    "@cast Anna = Sally" work as the voice list shows them.
    """
    known = _Known(*(None if ids is None else frozenset(ids) for ids in (voices, models, vocoders)),
                   voice_names={k.casefold(): v for k, v in (voice_names or {}).items()})
    if default_voice is not None and known.voice is not None and default_voice not in known.voice:
        raise ScriptError(f"the default voice '{default_voice}' is not a voice ({_listing(known.voice)})")
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise ScriptError("the script is empty")

    cast: dict[str, CastEntry] = {}
    lexicon: dict[str, str] = {}
    lines: list[Line] = []
    for number, raw in enumerate(_split_lines(text), start=1):
        if len(raw) > max_line_chars:
            raise ScriptError(f"the line has {len(raw)} characters; the limit is {max_line_chars} (break it into "
                              "several lines, a paragraph or a few sentences each)", number)
        body = raw.strip()
        if not body or body.startswith("#"):
            continue
        if body.startswith("@"):
            if lines:
                raise ScriptError("@cast and @say lines must come before the first spoken line", number)
            if body.split(maxsplit=1)[0] == "@say":
                word, value = _parse_say(body, number)
                if word.lower() in {w.lower() for w in lexicon}:
                    raise ScriptError(f"'{word}' already has a pronunciation", number)
                lexicon[word] = value
                continue
            entry = _parse_cast(body, number, known)
            if entry.name in cast:
                raise ScriptError(f"'{entry.name}' is already in the cast", number)
            cast[entry.name] = entry
            continue
        if len(lines) >= max_lines:
            raise ScriptError(f"the script goes past the limit of {max_lines} lines", number)
        lines.append(_parse_line(body, number, cast, known, default_voice))
    if not lines:
        raise ScriptError("the script is empty: it has no lines to say")
    return Script(cast=cast, lines=lines, lexicon=lexicon)


def _parse_say(body: str, number: int) -> tuple[str, str]:
    m = _SAY.fullmatch(body)
    if m is None or not m["value"]:
        raise ScriptError("expected '@say WORD = respelling' or '@say WORD = /phonemes/'", number)
    word, value = m["word"], m["value"]
    if not _SAY_WORD.fullmatch(word):
        raise ScriptError(f"'{_short(word)}' is not one word: @say takes a single word before '='", number)
    if value.startswith("/"):
        if len(value) < 3 or not value.endswith("/") or "/" in value[1:-1] or len(value) > 102:
            raise ScriptError(f"phonemes go between two slashes, e.g. '@say {word} = /dʒˈɪf/'", number)
    elif not _RESPELLING.fullmatch(value):
        raise ScriptError(f"the respelling of '{word}' must be plain words (letters, spaces, hyphens, "
                          "apostrophes), or phonemes between slashes", number)
    return word, " ".join(value.split())


def _parse_cast(body: str, number: int, known: _Known) -> CastEntry:
    directive = body.split(maxsplit=1)[0]
    if directive != "@cast":
        raise ScriptError(f"unknown directive '{_short(directive)}' (@cast and @say exist)", number)
    m = _CAST.fullmatch(body)
    if m is None:
        raise ScriptError("expected '@cast NAME = VOICE [key=value ...]'", number)
    name = m["name"]
    if not re.fullmatch(_SPEAKER_NAME, name):
        raise ScriptError(f"cast name '{_short(name)}' must be one word starting with a letter", number)
    voice = _setting_value("voice", m["voice"], number, known)
    settings = _read_settings(m["rest"], number, known, {})
    if "voice" in settings:
        raise ScriptError(f"give {name}'s voice once, after '='", number)
    return CastEntry(name=name, voice=voice, settings=settings)


def _parse_line(
    body: str, number: int, cast: dict[str, CastEntry], known: _Known, default_voice: str | None
) -> Line:
    speaker = None
    m = _SPEAKER.match(body)
    if m:
        speaker = m["name"]
        body = body[m.end() :]

    inline: dict[str, float | str] = {}
    segments: list[Segment] = []
    pos = 0
    for tag in _TAG.finditer(body):
        _add_speech(segments, body[pos : tag.start()])
        pos = tag.end()
        if tag["bad"] is not None:
            raise ScriptError(_unclosed_message(tag["bad"]), number)
        if tag["angle"] is not None:
            segments.append(Pause(_read_break(tag["angle"], number)))
            continue
        content = tag["square"].strip()
        if content.split(maxsplit=1)[:1] == ["pause"]:
            segments.append(Pause(_read_duration(content[len("pause") :].strip(), f"[{content}]", number)))
        elif "=" in content:
            if segments:
                raise ScriptError(f"settings [{_short(content)}] must come first, before any text or pause", number)
            _read_settings(content, number, known, inline)
        else:
            raise ScriptError(
                f"unknown tag '{_short(content)}' (tags are [pause 0.5s], [key=value ...] and <break time=\"500ms\"/>)",
                number,
            )
    _add_speech(segments, body[pos:])

    if not segments:
        raise ScriptError(
            f"'{speaker}:' has nothing to say after it" if speaker else "the settings have nothing to say after them",
            number,
        )
    entry = _fold_lookup(cast, speaker) if speaker else None
    speaker_voice = None
    if speaker and entry is None:
        speaker_voice = known.voice_id(speaker)
        if speaker_voice is None:
            example = sorted(known.voice)[0] if known.voice else "VOICE"
            raise ScriptError(
                f"unknown speaker '{speaker}': not in the cast ({_listing(cast)}) "
                f"and not a voice ({_listing(known.voice)}); to cast it, add '@cast {speaker} = {example}' "
                "before the first spoken line",
                number,
            )
    if not any(isinstance(s, Speech) for s in segments):
        return Line(number=number, speaker=speaker, voice=None, settings={}, segments=segments)
    voice = inline.pop("voice", None) or (entry.voice if entry else speaker_voice) or default_voice
    settings = {**(entry.settings if entry else {}), **inline}
    return Line(number=number, speaker=speaker, voice=voice, settings=settings, segments=segments)


def _fold_lookup(table: dict, name: str):
    """`table[name]`, else the one entry whose key matches `name` ignoring case ("ANNA" for a cast's
    "Anna", as screenplays write names); None if none or several do."""
    if name in table:
        return table[name]
    matches = [value for key, value in table.items() if key.casefold() == name.casefold()]
    return matches[0] if len(matches) == 1 else None


def _add_speech(segments: list[Segment], chunk: str) -> None:
    text = " ".join(chunk.split())
    if text:
        segments.append(Speech(text))


def _unclosed_message(bad: str) -> str:
    if bad == "[":
        return "'[' is never closed with ']'"
    if bad == "]":
        return "']' has no '[' before it"
    return f"the tag '{bad}' is never closed with '>'"


def _read_break(content: str, number: int) -> float:
    m = _BREAK.fullmatch(content)
    if m is None:
        name = content.lstrip("/").split(maxsplit=1)[0].rstrip("/")
        if name == "break":
            raise ScriptError(f"<{_short(content)}> needs a time, like <break time=\"500ms\"/>", number)
        raise ScriptError(f"unknown tag '{_short(name)}' (the only <tag> is <break time=\"500ms\"/>)", number)
    return _read_duration(m["dur"], f"<{content}>", number)


def _read_duration(value: str, tag: str, number: int) -> float:
    m = _DURATION.fullmatch(value)
    if m is None:
        raise ScriptError(f"{_short(tag)} needs a duration like 0.5s or 500ms", number)
    seconds = float(m[1]) / (1000.0 if m[2] == "ms" else 1.0)
    if seconds > MAX_PAUSE_SECONDS:
        raise ScriptError(f"{_short(tag)} is longer than {_format_number(MAX_PAUSE_SECONDS)}s", number)
    return seconds


def _read_settings(content: str, number: int, known: _Known, into: dict) -> dict:
    """Parse `key=value ...` into `into`; several blocks on one line merge, no key twice."""
    for token in re.sub(r"\s*=\s*", "=", content).split():
        key, eq, value = token.partition("=")
        if not (eq and key and value):
            raise ScriptError(f"expected key=value, got '{_short(token)}'", number)
        if key not in SETTING_KEYS:
            raise ScriptError(f"unknown setting '{_short(key)}' (settings: {', '.join(SETTING_KEYS)})", number)
        if key in into:
            raise ScriptError(f"'{key}' is set twice", number)
        into[key] = _setting_value(key, value, number, known)
    return into


def _setting_value(key: str, value: str, number: int, known: _Known) -> float | str:
    if key in SETTING_RANGES:
        lo, hi = SETTING_RANGES[key]
        if not _NUMBER.fullmatch(value):
            raise ScriptError(f"{key} must be a number, got '{_short(value)}'", number)
        x = float(value)
        if not lo <= x <= hi:
            raise ScriptError(
                f"{key}={_short(value)} is out of range ({_format_number(lo)} to {_format_number(hi)})", number
            )
        return x
    if not _NAME.fullmatch(value):
        raise ScriptError(f"'{_short(value)}' is not a valid {key} id", number)
    if key == "voice" and known.voice_id(value):
        return known.voice_id(value)
    allowed = getattr(known, key)
    if allowed is not None and value not in allowed:
        raise ScriptError(f"unknown {key} '{_short(value)}' ({_listing(allowed)})", number)
    return value


def _settings_tokens(settings: dict[str, float | str]) -> list[str]:
    return [
        f"{k}={_format_number(settings[k]) if k in SETTING_RANGES else settings[k]}"
        for k in SETTING_KEYS
        if k in settings
    ]


def _format_number(x: float) -> str:
    """Shortest decimal that reads back as the same float, never in exponent form."""
    x = float(x)
    if x.is_integer():
        return str(int(x))
    return format(Decimal(repr(x)), "f")


def _listing(ids: Iterable[str], limit: int = 12) -> str:
    ids = sorted(ids)
    if not ids:
        return "none"
    more = f", ... {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def _short(s: str, limit: int = 60) -> str:
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _split_lines(text: str) -> list[str]:
    """Split on \\n, \\r\\n and \\r only: str.splitlines also splits on form feeds and
    U+2028, which would shift line numbers away from what an editor shows."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


# ---------------------------------------------------------------------------------------------
# Subtitles


@dataclass
class Cue:
    """One subtitle: times in seconds, the text as it should be spoken.

    `index` is the cue's 1-based position in its file (SRT counters are often wrong, and VTT
    identifiers need not be numbers). `text` is cleaned: tags stripped, lines joined with a
    space, a leading dialogue dash or "SPEAKER:" label removed (the label goes to `speaker`).
    `words` holds (word, start, end) from WebVTT timestamp tags, when present. `line` is the
    source line of the timing, for messages; `sounds` the descriptions for the hearing impaired
    taken out of the text ("[DOOR SLAMS]", "(laughs)"), which are shown, not spoken. Both are
    left out of equality.
    """

    index: int
    start: float
    end: float
    text: str
    speaker: str | None = None
    words: list[tuple[str, float, float]] | None = None
    line: int | None = field(default=None, compare=False)
    sounds: list[str] = field(default_factory=list, compare=False)

    @property
    def duration(self) -> float:
        return self.end - self.start


_TS = r"(?:([0-9]{1,4}):)?([0-9]{1,2}):([0-9]{1,2})(?:[,.]([0-9]{1,3}))?"
_TIMESTAMP = re.compile(_TS)
_TIMING = re.compile(rf"\s*{_TS}\s*-->\s*{_TS}(?:\s.*)?")  # VTT cue settings / SRT X1: ignored
_TS_TAG = re.compile(r"<([0-9][^<>]*)>")  # WebVTT karaoke timestamp, <00:00:01.200>
_VOICE_TAG = re.compile(r"<v(?:\.[^\s<>]*)?(?:\s+(?P<name>[^<>]*))?>")
_ASS_OVERRIDE = re.compile(r"\{\\[^{}]*\}")  # {\an8}, {\i1}: ASS styling some SRT files carry
_LABEL = re.compile(r"(?P<name>[^\W\d_][\w .'-]{0,39}?)(?:\s*\([^()\n]{1,24}\))?\s*:(?:\s+|$)")
_DASH = re.compile(r"\A(?:-(?:\s+|$))+")  # dialogue dashes opening a line
# Subtitles for the hearing impaired describe sounds and manner: "[DOOR SLAMS]", "(LAUGHING)",
# "(whispers) Come here." Square brackets are always such a description; parentheses are one
# when they open a line, or hold capitals only, five or more or several words ("(SIGHS)"), so an
# aside ("I told him (twice) to go"), an acronym ("(FBI)") or a year ("(1998)") is still spoken.
# Music notes only frame lyrics, which are spoken.
_SQUARE_DESCRIPTION = re.compile(r"\[[^\[\]\n]*\]")
_ROUND_DESCRIPTION = re.compile(r"\A\s*(?:-\s*)?\([^()\n]*\)|\((?P<caps>[^()\n]*)\)")
_MUSIC = re.compile(r"[\u266a\u266b\u266c]+")
_VTT_HEADER = re.compile(r"WEBVTT(?:\s|$)")
_VTT_SKIPPED = re.compile(r"(?:NOTE|STYLE|REGION)(?:\s|$)")
_COUNTER = re.compile(r"[0-9]+")


def parse_subtitles(text: str, fmt: str | None = None, max_cues: int = 5000) -> list[Cue]:
    """Read SRT or WebVTT; `fmt` None picks WebVTT when the file starts with "WEBVTT"."""
    if fmt is None:
        fmt = "vtt" if _VTT_HEADER.match(text.lstrip("\ufeff").lstrip()) else "srt"
    fmt = fmt.lower().lstrip(".")
    if fmt == "srt":
        return parse_srt(text, max_cues=max_cues)
    if fmt in ("vtt", "webvtt"):
        return parse_vtt(text, max_cues=max_cues)
    raise SubtitleError(f"unknown subtitle format '{_short(fmt)}' (srt or vtt)")


def parse_srt(text: str, max_cues: int = 5000) -> list[Cue]:
    """Read SubRip. Tolerates a BOM, CRLF, stray blank lines, '.' for ',', a missing blank
    line between cues, <i>-style and {\\an8} markup. Raises `SubtitleError` with the line."""
    return _parse_cues(text, vtt=False, max_cues=max_cues)


def parse_vtt(text: str, max_cues: int = 5000) -> list[Cue]:
    """Read WebVTT. Also tolerates hours left out, cue settings, NOTE/STYLE/REGION blocks,
    cue identifiers, <v Speaker> (-> `speaker`), entities, and <00:00:01.200> word timings
    (-> `words`). A missing "WEBVTT" header is forgiven."""
    return _parse_cues(text, vtt=True, max_cues=max_cues)


def check_cues(cues: Sequence[Cue]) -> list[str]:
    """Warnings a dub should show but not refuse: no cues, empty cues, cues out of order or
    overlapping. Parsing keeps the file's order; sort by `start` to repair the order."""
    if not cues:
        return ["there are no cues"]
    warnings = []
    prev: Cue | None = None
    latest_end = -math.inf
    for cue in cues:
        where = f"cue {cue.index}" + (f" (line {cue.line})" if cue.line is not None else "")
        if not cue.text.strip() and cue.sounds:
            warnings.append(f"{where} only describes a sound ({_short(' '.join(cue.sounds))}): left silent")
        elif not cue.text.strip():
            warnings.append(f"{where} has no text")
        if prev is not None and cue.start < prev.start:
            warnings.append(
                f"{where} starts at {format_timestamp(cue.start)}, before cue {prev.index} "
                f"({format_timestamp(prev.start)}): the cues are out of order"
            )
        elif cue.start < latest_end:
            warnings.append(
                f"{where} starts at {format_timestamp(cue.start)}, while an earlier cue is showing "
                f"until {format_timestamp(latest_end)}"
            )
        prev = cue
        latest_end = max(latest_end, cue.end)
    return warnings


def format_timestamp(seconds: float, sep: str = ",") -> str:
    """`HH:MM:SS,mmm` (SRT); pass sep="." for WebVTT. Rounds to the millisecond."""
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"a timestamp must be a finite number of seconds >= 0, got {seconds!r}")
    ms = round(seconds * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def write_srt(cues: Iterable[Cue]) -> str:
    """SubRip text. Counters are renumbered 1..n; a speaker is written as "SPEAKER: text",
    which reads back as a speaker only when it has no lower-case letters (the subtitle
    convention); `words` are not written (SRT has no place for them). A text that is itself
    a timing line ("00:00:01,000 --> ...") would read back as a new cue; SRT cannot escape it."""
    blocks = []
    for i, cue in enumerate(cues, start=1):
        text = "\n".join(s.strip() for s in cue.text.splitlines() if s.strip())
        if cue.speaker:
            text = f"{cue.speaker}: {text}".rstrip()
        timing = f"{format_timestamp(cue.start)} --> {format_timestamp(cue.end)}"
        blocks.append("\n".join(filter(None, [str(i), timing, text])))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def write_vtt(cues: Iterable[Cue], words: bool = True) -> str:
    """WebVTT text; speakers as <v Speaker>, and each cue's `words` as inline timestamps
    (`<00:00:01.200>word`) when it has them and `words` is true."""
    blocks = ["WEBVTT"]
    for cue in cues:
        body = f"<v {_escape(cue.speaker)}>" if cue.speaker else ""
        if words and cue.words:
            body += " ".join(f"<{format_timestamp(t0, '.')}>{_escape(w)}" for w, t0, _ in cue.words)
        else:
            body += _escape(" ".join(cue.text.split()))
        timing = f"{format_timestamp(cue.start, '.')} --> {format_timestamp(cue.end, '.')}"
        blocks.append(f"{timing}\n{body}" if body else timing)
    return "\n\n".join(blocks) + "\n"


def _escape(s: str) -> str:
    return html.escape(s, quote=False)


def _parse_cues(text: str, *, vtt: bool, max_cues: int) -> list[Cue]:
    if text.startswith("\ufeff"):
        text = text[1:]
    cues: list[Cue] = []
    for n, block in enumerate(_blocks(_split_lines(text))):
        if vtt and n == 0 and _VTT_HEADER.match(block[0][1].strip()):
            # Header metadata runs to the first blank line; some writers put the first cue
            # right under it, so keep whatever starts one line above a timing line.
            arrow = next((k for k, (_, s) in enumerate(block) if k > 0 and "-->" in s), None)
            if arrow is None:
                continue
            block = block[max(1, arrow - 1) :]
        if vtt and _VTT_SKIPPED.match(block[0][1].strip()):
            continue
        for (number, timing), text_lines in _cue_chunks(block, vtt):
            if len(cues) >= max_cues:
                raise SubtitleError(f"the file goes past the limit of {max_cues} cues", number)
            start, end = _read_timing(timing, number)
            body, speaker, words, sounds = _clean_cue_text(text_lines, start, end, vtt)
            cues.append(Cue(len(cues) + 1, start, end, body, speaker, words, line=number, sounds=sounds))
    return cues


def _blocks(lines: list[str]) -> list[list[tuple[int, str]]]:
    """Runs of non-blank lines, each line with its 1-based number."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            current.append((number, line))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _cue_chunks(block: list[tuple[int, str]], vtt: bool):
    """Split a block into (timing line, text lines) per cue.

    A cue is an optional counter/identifier line, its timing line, then text. A later line
    that is a whole timing line starts another cue (with the counter just above it), which
    rescues files that forgot the blank line between cues.
    """
    arrow = next((k for k, (_, s) in enumerate(block) if "-->" in s), None)
    if arrow is None:
        number, first = block[0]
        hint = " (is this a WebVTT file?)" if not vtt and _VTT_HEADER.match(first.strip()) else ""
        raise SubtitleError(
            f"expected a cue timing like '00:00:01,000 --> 00:00:02,500', got '{_short(first.strip())}'{hint}",
            number,
        )
    if arrow > 1:
        number, extra = block[1]
        raise SubtitleError(f"expected a cue timing after the cue number, got '{_short(extra.strip())}'", number)
    starts = [arrow] + [k for k in range(arrow + 1, len(block)) if _TIMING.fullmatch(block[k][1])]
    chunks = []
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(block)
        if end < len(block) and end - 1 > s and _COUNTER.fullmatch(block[end - 1][1].strip()):
            end -= 1
        chunks.append((block[s], [line for _, line in block[s + 1 : end]]))
    return chunks


def _read_timing(line: str, number: int) -> tuple[float, float]:
    m = _TIMING.fullmatch(line)
    if m is None:
        raise SubtitleError(
            f"malformed timing line '{_short(line.strip())}' (expected '00:00:01,000 --> 00:00:02,500')", number
        )
    start_ms, end_ms = _timestamp_ms(m.groups()[:4]), _timestamp_ms(m.groups()[4:])
    if start_ms is None or end_ms is None:
        raise SubtitleError(f"minutes and seconds must be below 60 in '{_short(line.strip())}'", number)
    start, end = start_ms / 1000, end_ms / 1000  # from integer ms, so write -> read is exact
    if end <= start:
        raise SubtitleError(
            f"the cue ends ({format_timestamp(end)}) before it starts ({format_timestamp(start)})"
            if end < start
            else f"the cue ends when it starts ({format_timestamp(start)})",
            number,
        )
    return start, end


def _timestamp_ms(groups: Sequence[str | None]) -> int | None:
    """Integer milliseconds from `_TS` groups; None when minutes or seconds pass 59."""
    h, m, s, frac = groups
    if int(m) >= 60 or int(s) >= 60:
        return None
    return int(h or 0) * 3_600_000 + int(m) * 60_000 + int(s) * 1000 + int((frac or "0").ljust(3, "0"))


def _clean_cue_text(
    lines: list[str], start: float, end: float, vtt: bool
) -> tuple[str, str | None, list[tuple[str, float, float]] | None, list[str]]:
    raw = "\n".join(lines)
    speaker = None
    voice = _VOICE_TAG.search(raw)
    if voice and voice["name"]:
        speaker = _clean_fragment(voice["name"], vtt) or None

    kept, sounds = [], []
    for line in _clean_fragment(raw, vtt, keep_lines=True).split("\n"):
        line = _take_descriptions(" ".join(line.split()), sounds)
        line = _DASH.sub("", line, count=1)
        if line:
            kept.append(line)
    text = " ".join(kept)
    if speaker is None:
        label = _LABEL.match(text)
        if label and label["name"] == label["name"].upper():
            speaker = label["name"]
            text = _take_descriptions(text[label.end() :], sounds)  # "JOHN: (shouting) Stop!"
    text = _DASH.sub("", text, count=1)
    return text, speaker, _read_words(raw, start, end, vtt), sounds


def _take_descriptions(line: str, sounds: list[str]) -> str:
    """`line` without its sound descriptions and music notes, which are appended to `sounds`."""

    def take(m: re.Match) -> str:
        if m.lastgroup == "caps":
            inner = m["caps"].strip()
            shouted = not re.search(r"[a-z0-9]", inner) and (len(re.sub(r"\W", "", inner)) >= 5 or " " in inner)
            if not shouted:
                return m.group(0)  # a spoken aside, an acronym, a number
        sounds.append(m.group(0).strip().lstrip("-").strip())
        return " "

    line = _SQUARE_DESCRIPTION.sub(take, line)
    line = _ROUND_DESCRIPTION.sub(take, line)
    line = _MUSIC.sub(" ", line)
    return " ".join(line.split())


def _read_words(raw: str, start: float, end: float, vtt: bool) -> list[tuple[str, float, float]] | None:
    """(chunk, start, end) between WebVTT timestamp tags; each chunk ends where the next
    one starts, the last at the cue's end. None when the cue has no timestamps."""
    pieces = _TS_TAG.split(raw)  # text, stamp, text, stamp, ..., text
    marks: list[tuple[float, str]] = [(start, pieces[0])]
    for stamp, chunk in zip(pieces[1::2], pieces[2::2]):
        m = _TIMESTAMP.fullmatch(stamp)
        ms = _timestamp_ms(m.groups()) if m else None
        if ms is None or not marks[-1][0] <= ms / 1000 <= end:  # keep words ordered, in the cue
            marks[-1] = (marks[-1][0], marks[-1][1] + chunk)  # not a usable time: drop the tag
        else:
            marks.append((ms / 1000, chunk))
    if len(marks) == 1:
        return None
    words = []
    for i, (t0, chunk) in enumerate(marks):
        word = _clean_fragment(chunk, vtt)
        if word:
            words.append((word, t0, marks[i + 1][0] if i + 1 < len(marks) else end))
    return words


def _clean_fragment(s: str, vtt: bool, keep_lines: bool = False) -> str:
    s = _strip_tags(_ASS_OVERRIDE.sub("", s))
    if vtt:
        s = html.unescape(s)  # WebVTT escapes & < > (and may use &nbsp;); SRT has no escapes
    return s if keep_lines else " ".join(s.split())


def _strip_tags(s: str) -> str:
    """Drop <i>, </b>, <font ...>, <c.x>, <v Name>, <00:00:01.000>: every '<' + letter,
    digit or '/' up to its '>'.

    Tags are removed innermost first until none is left, so "<<b>i>" leaves no "<i>" behind
    and cleaned text reads back unchanged once written. The stack holds the '<'s that no
    literal '>' has followed yet; it makes this one linear pass instead of repeated regex
    passes, which a hostile file could drive quadratic. A '<' not opening a tag ("a < b")
    is kept.
    """
    out: list[str] = []
    opens: list[int] = []  # positions in `out` of '<' not yet followed by a literal '>'
    for ch in s:
        if ch == ">" and opens:
            i = opens[-1]
            head = "".join(out[i + 1 : i + 3])
            head = head[1:2] if head.startswith("/") else head[:1]
            if head.isascii() and head.isalnum():
                del out[i:]
                opens.pop()
                continue
            opens.clear()  # this '>' stays, so no '<' before it can close past it
        elif ch == "<":
            opens.append(len(out))
        out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Slot fitting


@dataclass(frozen=True)
class Placement:
    """Where a take lands on the dub track, and how fast it must be spoken."""

    start: float  # seconds: the cue's start
    end: float  # start + natural duration / rate
    rate: float  # speed-up factor for the take (1.0 = as synthesized)
    fits: bool  # the take ends by the cue's end
    overrun: bool  # the take runs past the start of the next cue in time


def fit_rate(
    natural_seconds: float, slot_seconds: float, min_rate: float = 1.0, max_rate: float = 1.6
) -> tuple[float, bool]:
    """Speaking rate that fits a take of `natural_seconds` into `slot_seconds`, and whether
    it fits at all within `max_rate`.

    The rate is natural / slot clipped to [min_rate, max_rate]. The default `min_rate=1.0`
    never slows a take down: a short line followed by silence sounds better than stretched
    speech; pass min_rate < 1 to let short lines be slowed to fill their slot.
    When `fits` is true, `natural_seconds / rate <= slot_seconds` holds exactly.
    """
    if not (math.isfinite(natural_seconds) and natural_seconds >= 0):
        raise ValueError(f"natural_seconds must be >= 0, got {natural_seconds!r}")
    if not (math.isfinite(slot_seconds) and slot_seconds > 0):
        raise ValueError(f"slot_seconds must be > 0, got {slot_seconds!r}")
    if not 0 < min_rate <= max_rate:
        raise ValueError(f"need 0 < min_rate <= max_rate, got {min_rate!r} and {max_rate!r}")
    rate = min(max(natural_seconds / slot_seconds, min_rate), max_rate)
    # natural / (natural / slot) can land an ulp above slot; nudge the rate up.
    for _ in range(4):
        if natural_seconds / rate <= slot_seconds or rate >= max_rate:
            break
        rate = min(math.nextafter(rate, math.inf), max_rate)
    return rate, natural_seconds / rate <= slot_seconds


def place_cues(
    cues: Sequence[Cue], durations: Sequence[float], min_rate: float = 1.0, max_rate: float = 1.6
) -> list[Placement]:
    """Plan a dub track: each take starts at its cue's start, sped up to fit its cue
    (`fit_rate`), and is flagged when it still spills into the next cue.

    `durations` are the takes' natural lengths in seconds, one per cue. Nothing is shifted:
    an overrunning take overlaps the next one, and the engine decides whether to trim,
    duck or delay. Placements come back in the order of `cues`; "next" means next in time.
    """
    if len(cues) != len(durations):
        raise ValueError(f"{len(cues)} cues but {len(durations)} durations")
    planned = []
    for cue, natural in zip(cues, durations):
        rate, fits = fit_rate(float(natural), cue.end - cue.start, min_rate, max_rate)
        planned.append((cue.start, cue.start + float(natural) / rate, rate, fits))
    order = sorted(range(len(cues)), key=lambda i: (cues[i].start, i))
    next_start = {i: cues[j].start for i, j in zip(order, order[1:])}
    return [
        Placement(start, end, rate, fits, overrun=i in next_start and end > next_start[i])
        for i, (start, end, rate, fits) in enumerate(planned)
    ]
