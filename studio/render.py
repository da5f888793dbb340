"""From a script or a subtitle file to a finished track, its subtitles and a project file.

Both the CLI (`render`, `dub`) and the studio's UI call these; they stand on the engine (audio)
and `studio.script` (parsing, slot planning).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.audio import mix_over, resample, silence
from studio.engine import MODEL_ALIASES, Engine, Take
from studio.errors import ScriptError, StudioError, SubtitleError
from studio.script import Cue, Line, Pause, Script, check_cues, fit_rate, parse_script, parse_subtitles, write_srt, write_vtt

log = logging.getLogger(__name__)

PROJECT_FORMAT = "studio-project"
PROJECT_VERSION = 1
LINE_GAP_S = 0.35  # silence between script lines


@dataclass
class RenderedLine:
    number: int  # source line (script) or cue index (dub)
    text: str
    voice: str | None
    start: float  # where the line's speech starts on the track, seconds
    end: float
    takes: list[Take] = field(default_factory=list)
    take_starts: list[float] = field(default_factory=list)  # where each take starts, from line_start
    line_start: float = 0.0  # where the line's audio (inline pauses included) starts on the track
    audio: np.ndarray | None = None  # script: the line's own audio (inline pauses included)
    pause_before: float = 0.0  # script: seconds of pause-only lines before this one
    settings: dict = field(default_factory=dict)
    seed: int = 0
    rate: float = 1.0  # dub: speed-up used to fit the slot
    slot: tuple[float, float] | None = None  # dub: the cue's own times
    fits: bool = True
    overrun: bool = False
    error: str | None = None

    @property
    def words(self) -> list[tuple[str, float, float]]:
        return [(w, s + self.line_start + t0, e + self.line_start + t0)
                for t, t0 in zip(self.takes, self.take_starts) for w, s, e in t.words]

    def row(self) -> dict:
        health = [t.health for t in self.takes]
        return {
            "line": self.number, "text": self.text, "voice": self.voice,
            "start": round(self.start, 3), "end": round(self.end, 3),
            "rate": round(self.rate, 3), "fits": self.fits, "overrun": self.overrun,
            "slot": [round(x, 3) for x in self.slot] if self.slot else None,
            "health": "healthy" if all(h["ok"] for h in health) else "; ".join(
                h["verdict"] for h in health if not h["ok"]),
            "retakes": [r for h in health for r in h["retakes"]],
            "vocoder": ", ".join(sorted({t.vocoder for t in self.takes})),  # what ran ("auto" picks per voice)
            "seed": self.seed,
            "error": self.error,
        }


@dataclass
class RenderResult:
    kind: str  # "script" or "dub"
    source: str
    audio: np.ndarray
    sample_rate: int
    lines: list[RenderedLine]
    settings: dict
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def cues(self) -> list[Cue]:
        """One cue per spoken line, timed by what was actually spoken."""
        out = []
        for line in self.lines:
            if line.takes and line.end > line.start:
                out.append(Cue(len(out) + 1, line.start, line.end, line.text, words=line.words or None))
        return out

    def srt(self) -> str:
        return write_srt(self.cues())

    def vtt(self) -> str:
        return write_vtt(self.cues())

    def summary(self) -> dict:
        dur = len(self.audio) / self.sample_rate
        return {"kind": self.kind, "duration_s": round(dur, 3), "compute_s": round(self.seconds, 3),
                "rtf": round(self.seconds / max(dur, 1e-6), 3), "lines": [line.row() for line in self.lines],
                "warnings": self.warnings, "settings": self.settings}

    def stems(self) -> dict[str, np.ndarray]:
        """The track split by voice, as a mixing editor wants it: for each voice a track as long as
        the whole one holding only that voice's lines, in place. The stems add up to the track."""
        n, sr = len(self.audio), self.sample_rate
        out: dict[str, np.ndarray] = {}
        for line in self.lines:
            if not line.takes:
                continue
            stem = out.setdefault(line.voice or "voice", np.zeros(n, dtype=np.float32))
            if self.kind == "script":
                placed = [(line.line_start, line.audio)]
            else:
                placed = [(line.start, resample(t.audio, t.sample_rate, sr)) for t in line.takes]
            for start, wav in placed:
                s = int(round(start * sr))
                stem[s : s + len(wav)] += wav[: max(0, n - s)]
        total = sum(out.values()) if out else np.zeros(0)
        peak = float(np.max(np.abs(total))) if np.size(total) else 0.0
        if self.kind == "dub" and peak > 0.99:  # the dub's track was scaled so; its stems are too
            out = {k: v * np.float32(0.99 / peak) for k, v in out.items()}
        return out

    def mix(self, background: np.ndarray, background_sr: int, duck_db: float = 12.0) -> np.ndarray:
        """This track over `background` (see `read_background`), which is ducked by `duck_db`
        while a line is spoken: a voice-over mix at the background's rate and channels."""
        if not 0.0 <= duck_db <= 60.0:
            raise StudioError(f"the ducking depth must be 0 to 60 dB, got {duck_db:g}")
        spans = [(line.start, line.end) for line in self.lines if line.takes and line.end > line.start]
        return mix_over(self.audio, self.sample_rate, background, background_sr, spans, duck_db)

    def report_lines(self) -> list[str]:
        out = []
        for line in self.lines:
            r = line.row()
            flag = "" if r["health"] == "healthy" else f"  [{r['health']}]"
            if self.kind == "dub":
                flag += "" if line.fits else "  [does not fit its slot]"
            out.append(f"{line.number:4d} {line.start:7.2f}-{line.end:7.2f}s x{line.rate:.2f} {line.text[:60]}{flag}")
        if self.settings.get("cast"):
            out.append("cast: " + ", ".join(f"{name.upper()} -> {v}" for name, v in self.settings["cast"].items()))
        out += [f"warning: {w}" for w in self.warnings]
        return out

    def project(self) -> dict:
        return {"format": PROJECT_FORMAT, "version": PROJECT_VERSION, "kind": self.kind, "source": self.source,
                "settings": self.settings, "lines": [line.row() for line in self.lines],
                "takes": [[t.metadata() for t in line.takes] for line in self.lines]}


MAX_BACKGROUND_SECONDS = 4 * 3600


def read_background(path: str | Path) -> tuple[np.ndarray, int]:
    """A background track (WAV, FLAC, OGG or MP3) as (samples, channels) float32, and its rate."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise StudioError(f"background audio not found: {p}")
    try:
        info = sf.info(str(p))
        if info.frames / max(1, info.samplerate) > MAX_BACKGROUND_SECONDS:
            raise StudioError(f"the background audio {p.name} is longer than {MAX_BACKGROUND_SECONDS // 3600} hours")
        if not 1 <= info.channels <= 8:
            raise StudioError(f"the background audio {p.name} has {info.channels} channels (1 to 8 are mixed)")
        wav, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except StudioError:
        raise
    except Exception as e:  # noqa: BLE001 - libsndfile's errors name the problem ("Format not recognised")
        reason = str(e).split(":")[-1].strip().rstrip(".") or type(e).__name__
        raise StudioError(f"cannot read the background audio {p.name} ({reason}); use WAV, FLAC, OGG or MP3") from None
    if wav.size == 0:
        raise StudioError(f"the background audio {p.name} is empty")
    return np.nan_to_num(wav, nan=0.0, posinf=0.0, neginf=0.0), int(sr)


def load_project(data: dict) -> dict:
    """Validate a project file's dict; returns it. Raises StudioError for other or newer files."""
    if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
        raise StudioError("this is not a studio project file")
    version = data.get("version")
    if not isinstance(version, int) or version > PROJECT_VERSION:
        raise StudioError(f"the project was saved by a newer studio (format {version}); this one reads "
                          f"up to {PROJECT_VERSION}")
    if not isinstance(data.get("source"), str) or data.get("kind") not in ("script", "dub"):
        raise StudioError("the project file is damaged (no script or subtitle text)")
    return data


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="line", disable=None)  # None: only on a terminal


def voice_names(engine: Engine) -> dict[str, str]:
    """Each voice's first name ("Sally (US female)" -> "Sally") -> its id, where no two voices share
    one and it is not another voice's id."""
    firsts: dict[str, list[str]] = {}
    for v in engine.voices():
        first = v.name.split(" (")[0].split()[0] if v.name.strip() else ""
        if first:
            firsts.setdefault(first.casefold(), []).append(v.id)
    ids = {v.id.casefold() for v in engine.voices()}
    return {name: found[0] for name, found in firsts.items() if len(found) == 1 and name not in ids}


def parse_for_engine(engine: Engine, text: str, default_voice: str | None = None, max_lines: int = 1000,
                     max_line_chars: int = 2000) -> Script:
    """Parse a script against what the engine offers (voices, models, vocoders)."""
    voices = [v.id for v in engine.voices()]
    if not voices:
        raise StudioError("no voices are available: no acoustic model checkpoints were found")
    script = parse_script(text, voices=voices, default_voice=default_voice or voices[0],
                          voice_names=voice_names(engine),
                          models=[m.name for m in engine.models("acoustic")] + list(MODEL_ALIASES),
                          vocoders=engine.vocoder_names(),
                          max_lines=max_lines, max_line_chars=max_line_chars)
    if not any(not line.is_pause for line in script.lines):
        raise ScriptError("the script has no spoken lines")
    return script


def render_line(engine: Engine, line: Line, model: str, vocoder: str, sample_rate: int, seed: int = 0,
                pause_before: float = 0.0, lexicon: dict[str, str] | None = None) -> RenderedLine:
    """Synthesize one script line (its sentences and inline pauses) into its own audio;
    `lexicon` is the script's pronunciations."""
    rl = RenderedLine(line.number, line.text, line.voice, 0.0, 0.0, pause_before=pause_before,
                      settings=dict(line.settings), seed=seed)
    pieces, cursor = [], 0.0
    for seg in line.segments:
        if isinstance(seg, Pause):
            pieces.append(silence(seg.seconds, sample_rate))
            cursor += seg.seconds
            continue
        try:
            take = engine.synthesize(seg.text, voice=line.voice or engine.voices()[0].id,
                                     model=str(line.settings.get("model", model)),
                                     vocoder=str(line.settings.get("vocoder", vocoder)),
                                     speed=float(line.settings.get("speed", 1.0)),
                                     pitch=float(line.settings.get("pitch", 0.0)), seed=seed, lexicon=lexicon)
        except StudioError as e:
            raise type(e)(e.message, line=line.number) from None
        except ValueError as e:
            raise ScriptError(str(e), line=line.number) from None
        wav = resample(take.audio, take.sample_rate, sample_rate)
        rl.takes.append(take)
        rl.take_starts.append(cursor)
        pieces.append(wav)
        cursor += len(wav) / sample_rate
    rl.audio = np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)
    return rl


def iter_script(engine: Engine, script: Script, model: str, vocoder: str, seed: int = 0):
    """Yield each spoken line of a parsed script as it is rendered (pause-only lines are folded
    into the next line's `pause_before`)."""
    sr = engine.acoustic_model(model).audio.sample_rate
    pending_pause = 0.0
    for line in script.lines:
        if line.is_pause:
            pending_pause += sum(seg.seconds for seg in line.segments if isinstance(seg, Pause))
            continue
        yield render_line(engine, line, model, vocoder, sr, seed, pending_pause, script.lexicon)
        pending_pause = 0.0


def assemble_script(lines: list[RenderedLine], source: str, sample_rate: int, settings: dict,
                    seconds: float = 0.0) -> RenderResult:
    """Lay rendered lines end to end (with their pauses and a gap between lines) on one track."""
    pieces, cursor = [], 0.0
    for i, rl in enumerate(lines):
        if rl.pause_before:
            pieces.append(silence(rl.pause_before, sample_rate))
            cursor += rl.pause_before
        first = rl.take_starts[0] if rl.take_starts else 0.0
        rl.line_start = cursor
        rl.start = cursor + first
        rl.end = cursor + (rl.take_starts[-1] + rl.takes[-1].duration if rl.takes else 0.0)
        pieces.append(rl.audio)
        cursor += len(rl.audio) / sample_rate
        if i < len(lines) - 1:
            pieces.append(silence(LINE_GAP_S, sample_rate))
            cursor += LINE_GAP_S
    audio = np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)
    warnings = [f"line {rl.number}: {w}" for rl in lines for w in _take_warnings(rl)]
    return RenderResult("script", source, audio, sample_rate, lines, settings, warnings=warnings, seconds=seconds)


def _take_warnings(line: RenderedLine) -> list[str]:
    return list(dict.fromkeys(t.warning for t in line.takes if t.warning))


def render_script(engine: Engine, text: str, model: str = "tacotron", vocoder: str = "griffinlim",
                  default_voice: str | None = None, progress: bool = False, seed: int = 0,
                  max_lines: int = 1000, max_line_chars: int = 2000) -> RenderResult:
    """Render every line of a script onto one track."""
    t0 = time.perf_counter()
    script = parse_for_engine(engine, text, default_voice, max_lines, max_line_chars)
    sr = engine.acoustic_model(model).audio.sample_rate
    n = sum(not line.is_pause for line in script.lines)
    bar = _progress(n, progress, "render")
    lines = []
    for rl in iter_script(engine, script, model, vocoder, seed):
        lines.append(rl)
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    settings = {"model": model, "vocoder": vocoder, "default_voice": default_voice or engine.voices()[0].id}
    return assemble_script(lines, text, sr, settings, time.perf_counter() - t0)


def read_cues(engine: Engine, text: str, voice: str | None, model: str) -> tuple[list[Cue], list[str], str]:
    """Parse subtitles (sorted by start) and check the voice; returns cues, warnings, voice."""
    cues = sorted(parse_subtitles(text), key=lambda c: (c.start, c.index))
    warnings = check_cues(cues)
    voices = [v.id for v in engine.voices(model)]
    if not voices:
        raise StudioError("no voices are available: no acoustic model checkpoints were found")
    voice = voice or voices[0]
    if voice not in voices:
        raise StudioError(f"unknown voice {voice!r} (voices: {', '.join(voices)})")
    return cues, warnings, voice


def fill_least_used(speakers: list[str], chosen: dict[str, str], voices: list[str],
                    also_used: tuple[str, ...] = ()) -> dict[str, str]:
    """`chosen` completed for every speaker: one without a voice gets the voice used least so far
    (ties go to the earlier in `voices`), counting the voices already chosen and `also_used`."""
    chosen = dict(chosen)
    uses = {v: list(chosen.values()).count(v) + also_used.count(v) for v in voices}
    for spk in speakers:
        if not chosen.get(spk) and voices:
            chosen[spk] = min(voices, key=lambda v: uses[v])
            uses[chosen[spk]] += 1
    return {spk: chosen.get(spk, "") for spk in speakers}


def cast_speakers(engine: Engine, cues: list[Cue], default_voice: str, model: str,
                  cast: dict[str, str] | None = None) -> dict[str, str]:
    """A voice for every labelled speaker of the cues ("JOHN: ..."), so characters sound apart:
    the `cast` given (NAME -> voice id or name), else the voice the label names ("SLT:", "Sally:"),
    else the voice used least so far, the default voice (unlabelled cues) counted as used once.
    Keys are the labels lower-cased. Raises StudioError for a cast voice that does not exist."""
    ids = [v.id for v in engine.voices(model)]
    names = voice_names(engine)
    by_fold = {v.casefold(): v for v in ids}

    def resolve(name: str) -> str | None:
        return by_fold.get(name.casefold()) or names.get(name.casefold())

    chosen: dict[str, str] = {}
    for name, v in (cast or {}).items():
        if resolve(v) is None:
            raise StudioError(f"cast: {name} has unknown voice {v!r} (voices: {', '.join(ids)})")
        chosen[name.casefold()] = resolve(v)
    speakers = list(dict.fromkeys(c.speaker.casefold() for c in cues if c.speaker))
    for spk in speakers:
        if spk not in chosen and resolve(spk):
            chosen[spk] = resolve(spk)
    return fill_least_used(speakers, chosen, ids, also_used=(default_voice,))


def dub_cue(engine: Engine, cue: Cue, voice: str, model: str, vocoder: str, max_rate: float,
            cast: dict[str, str] | None = None, seed: int = 0) -> RenderedLine:
    """Synthesize one cue and speed it up (pitch kept) to fit its slot, up to `max_rate`."""
    voices = {v.id for v in engine.voices(model)}
    spk = (cue.speaker or "").lower()
    cast = {k.lower(): v for k, v in (cast or {}).items()}
    v = cast.get(spk) or (spk if spk in voices else voice)
    rl = RenderedLine(cue.index, cue.text, v, cue.start, cue.start, slot=(cue.start, cue.end), seed=seed)
    if cue.text.strip():
        try:
            take = engine.synthesize(cue.text, voice=v, model=model, vocoder=vocoder, seed=seed)
            rate, fits = fit_rate(take.duration, max(cue.duration, 1e-3), 1.0, max_rate)
            if rate > 1.0:
                take = engine.respeed(take, rate)
            rl.takes.append(take)
            rl.take_starts.append(0.0)
            rl.line_start = cue.start
            rl.rate, rl.fits = rate, fits
            rl.end = cue.start + take.duration
        except (StudioError, ValueError) as e:
            rl.error = str(e)
    return rl


def assemble_dub(lines: list[RenderedLine], cues: list[Cue], source: str, sample_rate: int, settings: dict,
                 warnings: list[str], seconds: float = 0.0) -> RenderResult:
    """Place each cue's take at its cue's start on a silent timeline; flag overruns."""
    warnings = list(warnings)
    by_time = sorted(lines, key=lambda r: r.start)
    for a, b in zip(by_time, by_time[1:]):
        a.overrun = a.end > b.start + 1e-6
    end = max([r.end for r in lines] + [c.end for c in cues] + [0.0])
    track = np.zeros(int(np.ceil(end * sample_rate)) + 1, dtype=np.float32)
    for r in lines:
        for take in r.takes:
            wav = resample(take.audio, take.sample_rate, sample_rate)
            s = int(round(r.start * sample_rate))
            track[s : s + len(wav)] += wav[: len(track) - s]
    peak = float(np.max(np.abs(track))) if track.size else 0.0
    if peak > 0.99:  # overlapping overruns can add up
        track *= 0.99 / peak
    for r in lines:
        if r.error:
            warnings.append(f"cue {r.number}: {r.error}")
        elif not r.fits:
            warnings.append(f"cue {r.number} needs more than x{settings['max_rate']} to fit its "
                            f"{r.slot[1] - r.slot[0]:.2f} s slot")
        warnings += [f"cue {r.number}: {w}" for w in _take_warnings(r)]
    return RenderResult("dub", source, track, sample_rate, lines, settings, warnings=warnings, seconds=seconds)


def dub_subtitles(engine: Engine, text: str, voice: str | None = None, model: str = "tacotron",
                  vocoder: str = "griffinlim", max_rate: float = 1.6, progress: bool = False,
                  cast: dict[str, str] | None = None) -> RenderResult:
    """Speak each cue inside its time slot and return the dubbed track."""
    t0 = time.perf_counter()
    cues, warnings, voice = read_cues(engine, text, voice, model)
    if not cues:
        raise SubtitleError("the subtitle file has no cues (expected blocks like '1', "
                            "'00:00:01,000 --> 00:00:02,500', then the text)")
    sr = engine.acoustic_model(model).audio.sample_rate
    cast = cast_speakers(engine, cues, voice, model, cast)
    bar = _progress(len(cues), progress, "dub")
    lines = []
    for cue in cues:
        lines.append(dub_cue(engine, cue, voice, model, vocoder, max_rate, cast))
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    settings = {"model": model, "vocoder": vocoder, "voice": voice, "max_rate": max_rate, "cast": cast}
    return assemble_dub(lines, cues, text, sr, settings, warnings, time.perf_counter() - t0)
