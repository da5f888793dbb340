"""From a script or a subtitle file to a finished track, its subtitles and a project file.

Both the CLI (`render`, `dub`) and the studio's UI call these; they stand on the engine (audio)
and `studio.script` (parsing, slot planning).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from studio.audio import resample, silence
from studio.engine import Engine, Take
from studio.errors import ScriptError, StudioError
from studio.script import Cue, Pause, Speech, check_cues, fit_rate, parse_script, parse_subtitles, write_srt, write_vtt

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
    take_starts: list[float] = field(default_factory=list)  # where each take starts on the track
    rate: float = 1.0  # dub: speed-up used to fit the slot
    slot: tuple[float, float] | None = None  # dub: the cue's own times
    fits: bool = True
    overrun: bool = False
    error: str | None = None

    @property
    def words(self) -> list[tuple[str, float, float]]:
        return [(w, s + t0, e + t0) for t, t0 in zip(self.takes, self.take_starts) for w, s, e in t.words]

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

    def report_lines(self) -> list[str]:
        out = []
        for line in self.lines:
            r = line.row()
            flag = "" if r["health"] == "healthy" else f"  [{r['health']}]"
            if self.kind == "dub":
                flag += "" if line.fits else "  [does not fit its slot]"
            out.append(f"{line.number:4d} {line.start:7.2f}-{line.end:7.2f}s x{line.rate:.2f} {line.text[:60]}{flag}")
        out += [f"warning: {w}" for w in self.warnings]
        return out

    def project(self) -> dict:
        return {"format": PROJECT_FORMAT, "version": PROJECT_VERSION, "kind": self.kind, "source": self.source,
                "settings": self.settings, "lines": [line.row() for line in self.lines],
                "takes": [[t.metadata() for t in line.takes] for line in self.lines]}


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

    return tqdm(total=total, desc=desc, unit="line")


def render_script(engine: Engine, text: str, model: str = "tacotron", vocoder: str = "griffinlim",
                  default_voice: str | None = None, progress: bool = False,
                  on_line: Callable[[RenderedLine, int, int], None] | None = None,
                  max_lines: int = 1000, max_line_chars: int = 2000) -> RenderResult:
    """Render every line of a script onto one track; `on_line(line, i, n)` is called as each finishes."""
    voices = [v.id for v in engine.voices()]
    if not voices:
        raise StudioError("no voices are available: no acoustic model checkpoints were found")
    script = parse_script(text, voices=voices, default_voice=default_voice or voices[0],
                          models=[m.name for m in engine.models("acoustic")] + ["transformer"],
                          vocoders=[m.name for m in engine.models("vocoder")],
                          max_lines=max_lines, max_line_chars=max_line_chars)
    spoken = [line for line in script.lines]
    if not any(not line.is_pause for line in spoken):
        raise ScriptError("the script has no spoken lines")
    t0 = time.perf_counter()
    sr = engine.acoustic_model(model).audio.sample_rate
    pieces, cursor, rendered = [], 0.0, []
    bar = _progress(len(spoken), progress, "render")
    for i, line in enumerate(spoken):
        rl = RenderedLine(line.number, line.text, line.voice, cursor, cursor)
        for seg in line.segments:
            if isinstance(seg, Pause):
                pieces.append(silence(seg.seconds, sr))
                cursor += seg.seconds
                continue
            assert isinstance(seg, Speech)
            try:
                take = engine.synthesize(seg.text, voice=line.voice or voices[0],
                                         model=str(line.settings.get("model", model)),
                                         vocoder=str(line.settings.get("vocoder", vocoder)),
                                         speed=float(line.settings.get("speed", 1.0)),
                                         pitch=float(line.settings.get("pitch", 0.0)))
            except StudioError as e:
                raise type(e)(str(e.message if hasattr(e, "message") else e), line=line.number) from None
            except ValueError as e:
                raise ScriptError(str(e), line=line.number) from None
            wav = resample(take.audio, take.sample_rate, sr)
            if not rl.takes:
                rl.start = cursor
            rl.takes.append(take)
            rl.take_starts.append(cursor)
            pieces.append(wav)
            cursor += len(wav) / sr
            rl.end = cursor
        if not line.is_pause:
            rendered.append(rl)
            pieces.append(silence(LINE_GAP_S, sr))
            cursor += LINE_GAP_S
        if bar:
            bar.update(1)
        if on_line:
            on_line(rl, i, len(spoken))
    if bar:
        bar.close()
    audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return RenderResult("script", text, audio.astype(np.float32), sr, rendered,
                        {"model": model, "vocoder": vocoder, "default_voice": default_voice or voices[0]},
                        seconds=time.perf_counter() - t0)


def dub_subtitles(engine: Engine, text: str, voice: str | None = None, model: str = "tacotron",
                  vocoder: str = "griffinlim", max_rate: float = 1.6, progress: bool = False,
                  on_line: Callable[[RenderedLine, int, int], None] | None = None,
                  cast: dict[str, str] | None = None) -> RenderResult:
    """Speak each cue inside its time slot: speed up (pitch kept) up to `max_rate`, place each
    take at its cue's start on a silent timeline, and report cues that still do not fit."""
    cues = sorted(parse_subtitles(text), key=lambda c: (c.start, c.index))
    warnings = check_cues(cues)
    voices = [v.id for v in engine.voices(model)]
    if not voices:
        raise StudioError("no voices are available: no acoustic model checkpoints were found")
    voice = voice or voices[0]
    if voice not in voices:
        raise StudioError(f"unknown voice {voice!r} (voices: {', '.join(voices)})")
    cast = {k.lower(): v for k, v in (cast or {}).items()}
    t0 = time.perf_counter()
    sr = engine.acoustic_model(model).audio.sample_rate
    rendered: list[RenderedLine] = []
    bar = _progress(len(cues), progress, "dub")
    for i, cue in enumerate(cues):
        spk = (cue.speaker or "").lower()
        v = cast.get(spk) or (spk if spk in voices else voice)
        rl = RenderedLine(cue.index, cue.text, v, cue.start, cue.start, slot=(cue.start, cue.end))
        if cue.text.strip():
            try:
                take = engine.synthesize(cue.text, voice=v, model=model, vocoder=vocoder)
                rate, fits = fit_rate(take.duration, max(cue.duration, 1e-3), 1.0, max_rate)
                if rate > 1.0:
                    take = engine.respeed(take, rate)
                rl.takes.append(take)
                rl.take_starts.append(cue.start)
                rl.rate, rl.fits = rate, fits
                rl.end = cue.start + take.duration
            except (StudioError, ValueError) as e:
                rl.error = str(e)
                warnings.append(f"cue {cue.index}: {e}")
        rendered.append(rl)
        if bar:
            bar.update(1)
        if on_line:
            on_line(rl, i, len(cues))
    if bar:
        bar.close()
    by_time = sorted(rendered, key=lambda r: r.start)
    for a, b in zip(by_time, by_time[1:]):
        a.overrun = a.end > b.start + 1e-6
    end = max([r.end for r in rendered] + [c.end for c in cues] + [0.0])
    track = np.zeros(int(np.ceil(end * sr)) + 1, dtype=np.float32)
    for r in rendered:
        for take in r.takes:
            wav = resample(take.audio, take.sample_rate, sr)
            s = int(round(r.start * sr))
            track[s : s + len(wav)] += wav[: len(track) - s]
    peak = float(np.max(np.abs(track))) if track.size else 0.0
    if peak > 0.99:  # overlapping overruns can add up
        track *= 0.99 / peak
    for r in rendered:
        if not r.fits:
            warnings.append(f"cue {r.number} needs more than x{max_rate} to fit its {r.slot[1] - r.slot[0]:.2f} s slot")
    return RenderResult("dub", text, track, sr, rendered,
                        {"model": model, "vocoder": vocoder, "voice": voice, "max_rate": max_rate},
                        warnings=warnings, seconds=time.perf_counter() - t0)
