"""The studio's event handlers: plain functions over the engine and a per-user session dict.

Gradio only wires these to components (see `studio.ui.app`), so every behaviour here is
tested by calling the function directly. User mistakes raise `gr.Error` with one readable
sentence; nothing in the session is changed by a request that fails.
"""

from __future__ import annotations

from inspect import isgeneratorfunction
import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from functools import wraps
from pathlib import Path

import gradio as gr
import numpy as np

from studio.audio import save_wav
from studio.engine import Engine, Take
from studio.errors import StudioError
from studio.plots import plot_alignment, plot_mel, plot_stop, save
from studio.render import (
    RenderedLine,
    assemble_dub,
    assemble_script,
    cast_speakers,
    dub_cue,
    fill_least_used,
    load_project,
    parse_for_engine,
    read_background,
    read_cues,
    render_line,
    voice_names,
)
from studio.script import check_cues, line_speaker, parse_subtitles
from studio.text import TextError

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "dubbing-studio"
TAKE_FILE_TTL_S = 300.0  # a take's own file is only read while Gradio copies it, right after the handler returns
# Limits a studio operator can change (environment variables), stated in the UI.
MAX_UPLOAD_BYTES = int(os.environ.get("STUDIO_MAX_UPLOAD_BYTES", 5_000_000))
LIMITS = {"max_line_chars": int(os.environ.get("STUDIO_MAX_LINE_CHARS", 2000)),
          "max_lines": int(os.environ.get("STUDIO_MAX_LINES", 200))}
LINE_HEADERS = ["#", "line", "voice", "start (s)", "end (s)", "health", "retakes", "RTF", "vocoder"]
DUB_HEADERS = ["cue", "text", "voice", "slot (s)", "slot length", "spoken length", "rate", "fits", "overrun"]

_engine: Engine | None = None
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    """One engine per process, shared by every user (models load once)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine()
        return _engine


def set_engine(engine: Engine) -> None:
    global _engine
    _engine = engine


def _as_message(fn_name: str, e: Exception) -> gr.Error:
    if isinstance(e, (StudioError, TextError)):
        return gr.Error(str(e))
    log.exception("handler %s failed", fn_name)  # a user sees one sentence, the log keeps the trace
    return gr.Error(f"Something went wrong ({type(e).__name__}: {e}). Your work is unchanged.")


def user_errors(fn):
    """Turn the project's own errors into a Gradio message; log anything else and say so.
    Works on plain handlers and on generator (streaming) handlers."""
    if isgeneratorfunction(fn):
        @wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as e:  # noqa: BLE001
                raise _as_message(fn.__name__, e) from None

        return gen_wrapper

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001
            raise _as_message(fn.__name__, e) from None

    return wrapper


# ---------------------------------------------------------------------------------------------
# session


def new_session() -> dict:
    return {"id": uuid.uuid4().hex[:12], "lines": [], "source": "", "settings": {}, "sample_rate": 16000,
            "dub": None, "seed": 0}


def _outdir(session: dict) -> Path:
    d = OUTPUT_ROOT / session["id"]
    d.mkdir(parents=True, exist_ok=True)
    return d


def _session(session: dict | None) -> dict:
    return session if isinstance(session, dict) and "id" in session else new_session()


# ---------------------------------------------------------------------------------------------
# choices


def model_choices(kind: str) -> list[str]:
    return [m.name for m in get_engine().models(kind)]


def vocoder_choices() -> list[str]:
    return get_engine().vocoder_names()


def voice_choices(model: str | None = None) -> list[tuple[str, str]]:
    try:
        return [(f"{v.name} ({v.id})", v.id) for v in get_engine().voices(model)]
    except StudioError:
        return []


def head_controls(model: str):
    """Layer and head sliders: shown for Transformer-TTS, sized to its stacks."""
    try:
        info = get_engine().info(model, "acoustic")
    except StudioError:
        return gr.update(visible=False), gr.update(visible=False)
    if info.model_type != "transformer_tts":
        return gr.update(visible=False), gr.update(visible=False)
    layers, heads = int(info.config.get("decoder_layers", 1)), int(info.config.get("n_heads", 1))
    timing_layer = int(info.config.get("timing_layer", -1)) % layers
    return (gr.update(visible=True, maximum=layers - 1, value=timing_layer),
            gr.update(visible=True, maximum=heads - 1, value=int(info.config.get("timing_head", 0))))


def example_scripts() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted((ASSETS / "scripts").glob("*.txt"))}


def load_example(name: str) -> str:
    scripts = example_scripts()
    if name not in scripts:
        raise gr.Error(f"no example script named {name!r}")
    return scripts[name]


def detect_cast(script: str) -> list[list[str]]:
    """Speakers used in the script and the voice each gets: its @cast line's, or the voice it names
    (case aside) or whose name it is ("Sally"), or else a suggestion: the least used voice, to keep
    the characters apart (Apply writes it as an @cast line)."""
    cast = {k.casefold(): v for k, v in re.findall(r"^@cast\s+(\S+)\s*=\s*(\S+)", script, flags=re.M)}
    speakers = dict.fromkeys(name for line in script.splitlines() if (name := line_speaker(line)))
    voices = [v.id for v in get_engine().voices()]
    by_fold = {v.casefold(): v for v in voices}
    names = voice_names(get_engine())
    chosen = {s: cast.get(s.casefold()) or by_fold.get(s.casefold()) or names.get(s.casefold()) or ""
              for s in speakers}
    chosen = fill_least_used(list(speakers), chosen, voices)
    return [[s, chosen[s]] for s in speakers]


def apply_cast(script: str, cast_rows) -> str:
    """Rewrite the script's @cast block from the cast table (speaker -> voice)."""
    rows = _rows(cast_rows)
    voices = {v.id for v in get_engine().voices()}
    entries = []
    for row in rows:
        if len(row) < 2 or not str(row[0]).strip() or not str(row[1]).strip():
            continue
        name, voice = str(row[0]).strip(), str(row[1]).strip()
        if voice not in voices:
            raise gr.Error(f"cast: {name} has unknown voice {voice!r} (voices: {', '.join(sorted(voices))})")
        entries.append((name, voice))
    kept = []
    for line in script.splitlines():
        m = re.match(r"^@cast\s+(\S+)\s*=\s*(\S+)(.*)$", line)
        if m and m.group(1) in dict(entries):
            kept.append(f"@cast {m.group(1)} = {dict(entries)[m.group(1)]}{m.group(3)}")
            entries = [e for e in entries if e[0] != m.group(1)]
        else:
            kept.append(line)
    new = [f"@cast {n} = {v}" for n, v in entries]
    return "\n".join(new + kept) + ("\n" if script.endswith("\n") else "")


def _rows(table) -> list[list]:
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):  # pandas DataFrame
        return table.values.tolist()
    if isinstance(table, dict) and "data" in table:
        return table["data"]
    return list(table)


# ---------------------------------------------------------------------------------------------
# studio: generate, regenerate, export


def _line_row(rl: RenderedLine) -> list:
    r = rl.row()
    rtf = np.mean([t.timings["rtf"] for t in rl.takes]) if rl.takes else 0.0
    badge = "✓ healthy" if r["health"] == "healthy" else f"⚠ {r['health']}"
    return [r["line"], rl.text, rl.voice or "", r["start"], r["end"], badge, ", ".join(r["retakes"]) or "-",
            round(float(rtf), 3), r["vocoder"]]


def _table(lines: list[RenderedLine], rows: list[list] | None = None) -> list[list]:
    return rows if rows is not None else [_line_row(rl) for rl in lines]


def _to_audio(wav: np.ndarray, sr: int, session: dict, name: str) -> str:
    """A WAV file of this session's, under a name never used before, for an Audio output.

    Not a (rate, array) tuple: Gradio writes those to a cache path named by the samples' hash, in
    place, so two sessions that render the same line (same text, voice and seed) rewrite one file
    while the other's browser downloads it, and the download is cut short (seen in the 20-client
    load run). A file handed over by path is copied into the cache under a temporary name and
    renamed, which is safe."""
    d = _outdir(session)
    now = time.time()
    for stale in d.glob(f"{name}_*.wav"):  # earlier takes of this slot, long since in Gradio's cache
        try:
            if now - stale.stat().st_mtime > TAKE_FILE_TTL_S:
                stale.unlink()
        except OSError:
            pass
    path = d / f"{name}_{uuid.uuid4().hex[:8]}.wav"
    tmp = d / f".{path.name}.tmp.wav"
    save_wav(tmp, wav, sr)
    tmp.replace(path)
    return str(path)


@user_errors
def generate(script: str, model: str, vocoder: str, voice: str, speed: float, pitch: float, session: dict,
             progress=gr.Progress()):
    """Render the script line by line, streaming: after each line the table, that line's
    audio and a status update are yielded; the full track comes with the last update."""
    session = _session(session)
    engine = get_engine()
    if not script or not script.strip():
        raise gr.Error("The script is empty: write a line such as 'Narrator: Hello there.' first.")
    parsed = parse_for_engine(engine, script, voice or None, **LIMITS)
    _apply_defaults(parsed, speed, pitch)
    sr = engine.acoustic_model(model).audio.sample_rate
    engine.vocoder(vocoder, engine.acoustic_model(model).audio)  # mismatched pair: fail before any work
    spoken = [line for line in parsed.lines if not line.is_pause]
    lines: list[RenderedLine] = []
    pending = 0.0
    t0 = time.perf_counter()
    yield (_table(lines), None, None, f"Rendering {len(spoken)} lines…", session)
    for line in parsed.lines:
        if line.is_pause:
            pending += sum(seg.seconds for seg in line.segments)
            continue
        progress((len(lines), len(spoken)), desc=f"line {line.number}")
        seed = session.get("line_seeds", {}).get(line.number, session["seed"])
        rl = render_line(engine, line, model, vocoder, sr, seed=seed, pause_before=pending, lexicon=parsed.lexicon)
        pending = 0.0
        lines.append(rl)
        status = f"Rendered {len(lines)} of {len(spoken)} lines ({time.perf_counter() - t0:.1f} s)."
        yield (_table(lines), _to_audio(rl.audio, sr, session, f"line{rl.number}"), gr.skip(), status, gr.skip())
    settings = {"model": model, "vocoder": vocoder, "default_voice": voice, "speed": speed, "pitch": pitch}
    result = assemble_script(lines, script, sr, settings, time.perf_counter() - t0)
    session.update(lines=lines, source=script, settings=settings, sample_rate=sr, result=result)
    bad = sum(1 for rl in lines if rl.row()["health"] != "healthy")
    status = (f"Done: {len(lines)} lines, {len(result.audio) / sr:.1f} s of audio in {result.seconds:.1f} s"
              + (f"; {bad} line(s) with alignment problems (see Inspect)." if bad else "."))
    if result.warnings:
        status += "\n\n" + "\n".join(f"- {w}" for w in result.warnings[:10])
    yield (_table(lines), gr.skip(), _to_audio(result.audio, sr, session, "track"), status, session)


def _apply_defaults(script, speed: float, pitch: float) -> None:
    """The toolbar's speed and pitch apply to lines that set none of their own."""
    for line in script.lines:
        if line.is_pause:
            continue
        if speed and abs(speed - 1.0) > 1e-6:
            line.settings.setdefault("speed", float(speed))
        if pitch:
            line.settings.setdefault("pitch", float(pitch))


@user_errors
def regenerate(line_no, session: dict):
    """A new take of one line (a new seed), the track re-assembled around it."""
    session = _session(session)
    lines: list[RenderedLine] = session["lines"]
    idx = _line_index(lines, line_no)
    engine = get_engine()
    s = session["settings"]
    parsed = parse_for_engine(engine, session["source"], s.get("default_voice") or None, **LIMITS)
    _apply_defaults(parsed, s.get("speed", 1.0), s.get("pitch", 0.0))
    source_line = next(line for line in parsed.lines if line.number == lines[idx].number)
    old = lines[idx]
    rl = render_line(engine, source_line, s["model"], s["vocoder"], session["sample_rate"], seed=old.seed + 1,
                     pause_before=old.pause_before, lexicon=parsed.lexicon)
    new_lines = lines[:idx] + [rl] + lines[idx + 1 :]
    result = assemble_script(new_lines, session["source"], session["sample_rate"], s)
    session.update(lines=new_lines, result=result)
    session.setdefault("line_seeds", {})[rl.number] = rl.seed
    sr = session["sample_rate"]
    return (_table(new_lines), _to_audio(rl.audio, sr, session, f"line{rl.number}"),
            _to_audio(result.audio, sr, session, "track"),
            f"Line {rl.number} regenerated (take {rl.seed + 1}).", session)


def _line_index(lines: list[RenderedLine], line_no, what: str = "line") -> int:
    if not lines:
        raise gr.Error("Nothing rendered yet: press Generate first.")
    try:
        n = int(line_no)
    except (TypeError, ValueError):
        raise gr.Error(f"Pick a {what}: click a row of the table or type its number.") from None
    for i, rl in enumerate(lines):
        if rl.number == n:
            return i
    raise gr.Error(f"There is no {what} {n} ({what}s: {', '.join(str(r.number) for r in lines)}).")


def first_line(session: dict):
    """After a render, select the first spoken line (its script line number)."""
    lines = _session(session)["lines"]
    return lines[0].number if lines else gr.skip()


def line_head_controls(line_no, session: dict):
    """Layer and head sliders for the selected line's own model (a script line can pick another
    model than the dropdown), set to the head its word timings come from."""
    try:
        n = int(line_no)
    except (TypeError, ValueError):
        return gr.skip(), gr.skip()
    for rl in _session(session)["lines"]:
        if rl.number == n and rl.takes:
            return head_controls(rl.takes[0].model)
    return gr.skip(), gr.skip()


def select_line(session: dict, evt: gr.SelectData):
    """Clicking a table row selects its line number."""
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    lines = _session(session)["lines"]
    return lines[row].number if 0 <= row < len(lines) else gr.skip()


def select_cue(session: dict, evt: gr.SelectData):
    """Clicking a row of the dub's timeline selects its cue number."""
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    result = _session(session).get("dub")
    lines = result.lines if result is not None else []
    return lines[row].number if 0 <= row < len(lines) else gr.skip()


@user_errors
def export(session: dict, background_file=None, duck_db: float = 12.0) -> list[str]:
    """Write the track (WAV, FLAC, MP3), SRT, WebVTT and the project JSON, and with a background
    (a music bed) track_mix.wav, the track over it; returns their paths."""
    session = _session(session)
    result = session.get("result")
    if result is None:
        raise gr.Error("Nothing to export yet: press Generate first.")
    background = read_background(background_file) if background_file else None
    files = _write_exports(result, _outdir(session), "track")
    if background is not None:
        mix = result.mix(background[0], background[1], float(duck_db))
        files.insert(0, str(save_wav(_outdir(session) / "track_mix.wav", mix, background[1])))
    return files


def _write_exports(result, d: Path, stem: str) -> list[str]:
    files = [save_wav(d / f"{stem}.{ext}", result.audio, result.sample_rate) for ext in ("wav", "flac", "mp3")]
    stems = result.stems()
    if len(stems) > 1:  # one voice's stem would be the track again
        files += [save_wav(d / f"{stem}_stem_{voice}.wav", audio, result.sample_rate) for voice, audio in stems.items()]
    (d / f"{stem}.srt").write_text(result.srt(), encoding="utf-8")
    (d / f"{stem}.vtt").write_text(result.vtt(), encoding="utf-8")
    (d / f"{stem}.project.json").write_text(json.dumps(result.project(), indent=2), encoding="utf-8")
    files += [d / f"{stem}.srt", d / f"{stem}.vtt", d / f"{stem}.project.json"]
    return [str(f) for f in files]


@user_errors
def open_project(path, session: dict):
    """Restore a saved project: script, settings, the takes table and each line's take (seed);
    the app then re-renders it, which reproduces the same audio."""
    session = _session(session)
    data = _read_upload(path, "project")
    try:
        project = load_project(json.loads(data))
    except json.JSONDecodeError:
        raise gr.Error("This file is not a project: it is not valid JSON.") from None
    if project["kind"] != "script":
        raise gr.Error("This project is a dub; open its subtitles in the Dub tab.")
    s = project.get("settings", {})
    rows = [[r["line"], r["text"], r.get("voice") or "", r["start"], r["end"],
             "✓ healthy" if r["health"] == "healthy" else f"⚠ {r['health']}", ", ".join(r.get("retakes", [])) or "-",
             "", r.get("vocoder", "")] for r in project.get("lines", [])]
    seeds = {int(r["line"]): int(r.get("seed", 0)) for r in project.get("lines", []) if "line" in r}
    session.update(lines=[], source=project["source"], settings=s, result=None, line_seeds=seeds)
    return (project["source"], s.get("model", "tacotron"), s.get("vocoder", "griffinlim"),
            s.get("default_voice"), float(s.get("speed", 1.0)), float(s.get("pitch", 0.0)), rows,
            "Project opened: script, settings and takes restored; rendering its audio…", session)


def _read_upload(path, what: str) -> str:
    if not path:
        raise gr.Error(f"Choose a {what} file first.")
    p = Path(path if isinstance(path, str) else getattr(path, "name", path))
    if p.stat().st_size > MAX_UPLOAD_BYTES:
        raise gr.Error(f"The {what} file is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB.")
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise gr.Error(f"The {what} file is not UTF-8 text.") from None


# ---------------------------------------------------------------------------------------------
# inspect


def describe_health(take: Take) -> str:
    """The health verdict in words, with times and the symbols involved."""
    engine = get_engine()
    audio = engine.acoustic_model(take.model).audio
    out = []
    for seg in take.segments:
        steps = seg.timing_alignment.shape[0]
        sps = len(seg.mel) / max(1, steps) * audio.hop_length / audio.sample_rate / take.settings.get("speed", 1.0)
        h = seg.health
        where = f"“{seg.text}”"
        if h["ok"]:
            out.append(f"✓ {where}: healthy (focus {h['focus_rate']:.2f}, monotonic {h['monotonicity']:.0%}, "
                       f"coverage {h['coverage']:.0%})" + (f"; fixed by retake: {seg.retake}" if seg.retake else ""))
            continue
        problems = []
        for (step, a, b) in h["skips"]:
            skipped = "".join(seg.tokens[a + 1 : b]).strip()
            problems.append(f"skipped '{skipped}' at {seg.offset_s + step * sps:.2f} s")
        for (step, a, b) in h["repeats"]:
            again = "".join(seg.tokens[b:a]).strip()
            problems.append(f"repeated '{again}' at {seg.offset_s + step * sps:.2f} s")
        if h["runaway"]:
            problems.append("never stopped by itself (runaway decoding, cut at the length limit)")
        if h["coverage"] < 0.85:
            problems.append(f"stopped after {h['coverage']:.0%} of the text")
        if h["focus_rate"] < 0.25:
            problems.append(f"attention is diffuse (focus {h['focus_rate']:.2f})")
        out.append(f"⚠ {where}: " + "; ".join(problems))
    return "\n\n".join(out)


@user_errors
def inspect(line_no, layer, head, session: dict):
    """Figures for one line: mel (decoder and postnet), alignment with word boundaries, stop curve."""
    session = _session(session)
    lines = session["lines"]
    rl = lines[_line_index(lines, line_no)]
    if not rl.takes:
        raise gr.Error(f"Line {rl.number} has no speech to inspect.")
    return inspect_take(rl.takes[0], layer, head, _outdir(session), f"line{rl.number}")


def inspect_take(take: Take, layer, head, d: Path, stem: str):
    engine = get_engine()
    audio = engine.acoustic_model(take.model).audio
    seg = take.segments[0]
    fps = audio.frames_per_second
    mel_png = d / f"{stem}_mel.png"
    save(plot_mel(seg.mel_before, "Decoder output (before postnet)", fps, compare=seg.mel,
                  compare_title="Postnet output (what the vocoder hears)"), mel_png)
    steps = seg.timing_alignment.shape[0]
    sps = len(seg.mel) / max(1, steps) / fps
    align = seg.alignment
    title = "Attention alignment"
    note = ""
    if align.ndim == 4:  # Transformer-TTS: (L, H, T_dec, T_text)
        L, H = align.shape[:2]
        li = min(max(int(layer or 0), 0), L - 1)
        hi = min(max(int(head or 0), 0), H - 1)
        align = align[li, hi]
        title = f"Encoder-decoder attention, layer {li}, head {hi}"
        timing = getattr(engine.acoustic_model(take.model).model, "timing_head", None)
        if timing is not None:
            note = f"Word timings and health are read from layer {timing[0]}, head {timing[1]}."
    words = [(w, s, e) for w, s, e in seg.words]
    align_png = d / f"{stem}_align.png"
    save(plot_alignment(align, seg.tokens, title, sps, words), align_png)
    stop_png = d / f"{stem}_stop.png"
    save(plot_stop(seg.stop, 0.5, sps), stop_png)
    verdict = describe_health(take)
    if note:
        verdict += "\n\n" + note
    return str(mel_png), str(align_png), str(stop_png), verdict


# ---------------------------------------------------------------------------------------------
# compare


@user_errors
def compare(text: str, model_a, vocoder_a, voice_a, model_b, vocoder_b, voice_b, session: dict):
    session = _session(session)
    engine = get_engine()
    if not text or not text.strip():
        raise gr.Error("Type a line to compare.")
    d = _outdir(session)
    out = []
    for tag, (m, v, voice) in (("a", (model_a, vocoder_a, voice_a)), ("b", (model_b, vocoder_b, voice_b))):
        take = engine.synthesize(text, voice=voice, model=m, vocoder=v)
        mel, align, _, verdict = inspect_take(take, 0, 0, d, f"compare_{tag}")
        t = take.timings
        info = (f"**{m} + {v}, voice {voice}**: {t['audio_s']:.2f} s of audio in {t['compute_s']:.2f} s "
                f"(acoustic {t['acoustic_s']:.2f} s, vocoder {t['vocoder_s']:.2f} s, RTF {t['rtf']:.2f})\n\n"
                + verdict)
        out += [_to_audio(take.audio, take.sample_rate, session, f"compare_{tag}"), mel, align, info]
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# dub


def _dub_row(rl: RenderedLine) -> list:
    slot = rl.slot or (rl.start, rl.end)
    spoken = rl.takes[0].duration if rl.takes else 0.0
    return [rl.number, rl.text or "(nothing to say: see the notes above)", rl.voice or "",
            f"{slot[0]:.2f}-{slot[1]:.2f}", round(slot[1] - slot[0], 2),
            round(spoken, 2), f"x{rl.rate:.2f}", "✓" if rl.fits and not rl.error else "✗ " + (rl.error or "too long"),
            "⚠" if rl.overrun else ""]


@user_errors
def dub(subs_file, subs_text: str, voice: str, model: str, vocoder: str, max_rate: float, session: dict,
        background_file=None, duck_db: float = 12.0, cast_rows=None, progress=gr.Progress()):
    """Fit every cue into its slot, streaming the timeline table; the track and files come last.
    With a background (the original soundtrack or a music bed) the track is mixed over it, the
    background ducked by `duck_db` under speech; the voices alone are among the downloads too."""
    session = _session(session)
    engine = get_engine()
    text = _read_upload(subs_file, "subtitle") if subs_file else (subs_text or "")
    if not text.strip():
        raise gr.Error("Upload an SRT or WebVTT file, or paste subtitles into the box.")
    background = read_background(background_file) if background_file else None  # before any work
    cues, warnings, voice = read_cues(engine, text, voice or None, model)
    if not cues:
        raise gr.Error("The subtitle file has no cues.")
    sr = engine.acoustic_model(model).audio.sample_rate
    cast = cast_speakers(engine, cues, voice, model, _cast_table(cast_rows))
    lines: list[RenderedLine] = []
    t0 = time.perf_counter()
    for i, cue in enumerate(cues):
        progress((i, len(cues)), desc=f"cue {cue.index}")
        lines.append(dub_cue(engine, cue, voice, model, vocoder, float(max_rate), cast))
        yield [_dub_row(r) for r in lines], gr.skip(), gr.skip(), f"Dubbed {i + 1} of {len(cues)} cues…", gr.skip()
    settings = {"model": model, "vocoder": vocoder, "voice": voice, "max_rate": float(max_rate), "cast": cast}
    result = assemble_dub(lines, cues, text, sr, settings, warnings, time.perf_counter() - t0)
    yield _finish_dub(result, session, background, duck_db, "Done")


@user_errors
def detect_dub_cast(subs_file, subs_text: str, voice: str, model: str) -> list[list[str]]:
    """The labelled speakers of the subtitles and the voice each would get (editable before Dub)."""
    engine = get_engine()
    text = _read_upload(subs_file, "subtitle") if subs_file else (subs_text or "")
    if not text.strip():
        raise gr.Error("Upload an SRT or WebVTT file, or paste subtitles into the box.")
    cues, _, voice = read_cues(engine, text, voice or None, model)
    return [[name.upper(), v] for name, v in cast_speakers(engine, cues, voice, model).items()]


def _cast_table(rows) -> dict[str, str]:
    """speaker -> voice from an edited cast table, blank rows left out."""
    return {str(r[0]).strip(): str(r[1]).strip() for r in _rows(rows)
            if len(r) >= 2 and str(r[0]).strip() and str(r[1]).strip()}


@user_errors
def redub_cue(cue_no, session: dict, background_file=None, duck_db: float = 12.0):
    """A new take of one cue (a new seed), the dub re-assembled (and re-mixed) around it."""
    session = _session(session)
    result = session.get("dub")
    if result is None:
        raise gr.Error("Nothing dubbed yet: press Dub first.")
    idx = _line_index(result.lines, cue_no, "cue")
    background = read_background(background_file) if background_file else None
    s = result.settings
    cues = sorted(parse_subtitles(result.source), key=lambda c: (c.start, c.index))
    cue = next(c for c in cues if c.index == result.lines[idx].number)
    old = result.lines[idx]
    new = dub_cue(get_engine(), cue, s["voice"], s["model"], s["vocoder"], s["max_rate"], s.get("cast"),
                  seed=old.seed + 1)
    lines = result.lines[:idx] + [new] + result.lines[idx + 1 :]
    result = assemble_dub(lines, cues, result.source, result.sample_rate, s, check_cues(cues))
    return _finish_dub(result, session, background, duck_db, f"Cue {new.number} dubbed again (take {new.seed + 1})")


def _finish_dub(result, session: dict, background, duck_db: float, done: str):
    """The outputs of a finished dub: timeline rows, the player's file, the downloads and a status."""
    session["dub"] = result
    sr, lines, s = result.sample_rate, result.lines, result.settings
    files = _write_exports(result, _outdir(session), "dub")
    player = _to_audio(result.audio, sr, session, "dub")
    status = f"{done}: {len(lines)} cues on a {len(result.audio) / sr:.1f} s track."
    if s.get("cast"):
        status += " Speakers: " + ", ".join(f"{name.upper()} → {v}" for name, v in s["cast"].items()) + "."
    if background is not None:
        mix = result.mix(background[0], background[1], float(duck_db))
        mixed = save_wav(_outdir(session) / "dub_mix.wav", mix, background[1])
        files.insert(0, str(mixed))
        player = str(mixed)
        status += (f" Mixed over the background ({len(mix) / background[1]:.1f} s, {mix.shape[1]} channel(s), "
                   f"{background[1]} Hz), ducked {float(duck_db):g} dB under speech.")
    misfits = sum(1 for r in lines if not r.fits or r.error)
    if misfits:
        status += f" {misfits} cue(s) do not fit even at x{s['max_rate']:.2f} (marked ✗)."
    if result.warnings:
        status += "\n\n" + "\n".join(f"- {w}" for w in result.warnings[:10])
    return [_dub_row(r) for r in lines], player, files, status, session


def load_example_subtitles(name: str) -> str:
    path = ASSETS / "subtitles" / name
    if not path.is_file():
        raise gr.Error(f"no example subtitles named {name!r}")
    return path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# voices and models


VOICE_SAMPLE = "The quick brown fox jumps over the lazy dog, and then it takes a nap."


def voice_cards() -> str:
    engine = get_engine()
    rows = ["| voice | id | language | learned from | models |", "|---|---|---|---|---|"]
    for v in engine.voices():
        rows.append(f"| {v.name} | `{v.id}` | {v.language} | {v.teacher} | {', '.join(v.models)} |")
    if len(rows) == 2:
        return "No voices: no acoustic checkpoints were found in the checkpoint folder."
    return "\n".join(rows)


@user_errors
def voice_sample(voice: str, model: str, vocoder: str, session: dict):
    """Play a voice: a shipped sample when one exists for this model, else render one now."""
    if not voice:
        raise gr.Error("Pick a voice.")
    shipped = ASSETS / "voices" / f"{model}_{voice}.wav"
    engine = get_engine()
    if engine.resolve_vocoder(vocoder, voice, engine.acoustic_model(model).audio) == "griffinlim" and shipped.is_file():
        return str(shipped)
    take = engine.synthesize(VOICE_SAMPLE, voice=voice, model=model, vocoder=vocoder)
    return str(save_wav(_outdir(_session(session)) / f"sample_{model}_{voice}.wav", take.audio, take.sample_rate))


def model_cards() -> str:
    engine = get_engine()
    reports = _reports()
    out = []
    for m in engine.models():
        if m.model_type == "griffinlim":
            out.append("### griffinlim (vocoder)\nGriffin-Lim phase reconstruction from the mel (torchaudio, 32 "
                       "iterations, momentum 0.99). No training; works with "
                       "any acoustic model's audio settings.")
            picks = []
            for v in engine.voices():
                try:
                    picks.append(f"{v.id}: {engine.pick_vocoder(v.id, engine.acoustic_model(v.models[0]).audio)}")
                except StudioError:
                    continue
            out.append("### auto (vocoder)\nPer voice, a trained vocoder whose copy synthesis of that voice's "
                       "held-out lines beat Griffin-Lim on both PESQ and STOI, else Griffin-Lim"
                       + (f" ({', '.join(picks)})." if picks else "."))
            continue
        params = ""
        if m.kind == "acoustic":
            try:
                params = f"{engine.acoustic_model(m.name).parameters / 1e6:.2f} M parameters; "
            except StudioError:
                pass
        metrics = m.metrics or {}
        audio = m.audio
        lines = [f"### {m.name} ({m.model_type}, {m.kind})",
                 f"{params}audio {audio.sample_rate} Hz, {audio.n_mels} mel bands, hop {audio.hop_length}; "
                 f"trained {metrics.get('steps', '?')} steps ({float(metrics.get('train_seconds', 0)) / 3600:.1f} h "
                 f"of compute) on {len(m.speakers)} teacher voices: "
                 + ", ".join(f"{s['id']} ({s.get('teacher', '')})" for s in m.speakers)]
        cfg = m.config
        if m.model_type == "tacotron":
            lines.append(f"Architecture: {cfg.get('frontend')} embedding {cfg.get('embed_dim')}, "
                         f"{cfg.get('encoder_convs')} conv + BiLSTM encoder {cfg.get('encoder_dim')}, "
                         f"{cfg.get('attention')} attention, decoder LSTMs {cfg.get('attention_rnn_dim')}/"
                         f"{cfg.get('decoder_rnn_dim')}, r = {cfg.get('r')}, postnet {cfg.get('postnet_layers')} "
                         "convs.")
        if m.model_type == "wavenet":
            predictor = f" over the residual of an order-{cfg['lpc_order']} predictor read off the mel" \
                if cfg.get("lpc_order") else ""
            lines.append(f"Architecture: {cfg.get('stacks')} x {cfg.get('layers')} dilated causal layers, "
                         f"{cfg.get('residual_channels')} residual / {cfg.get('gate_channels')} gate channels, "
                         f"{cfg.get('quantize_channels')}-class mu-law softmax{predictor}; a line is generated "
                         f"in {cfg.get('fold_seconds')} s folds side by side, then post-filtered toward the mel.")
            copy = metrics.get("copy_synthesis")
            if copy:
                lines.append(f"Copy synthesis of {copy.get('lines')} held-out teacher lines: PESQ {copy.get('pesq')} "
                             f"(Griffin-Lim {copy.get('griffinlim_pesq')}), STOI {copy.get('stoi')} "
                             f"(Griffin-Lim {copy.get('griffinlim_stoi')}).")
        q = reports.get(f"quality_{m.name}_griffinlim")
        if q and "overall" in q:
            o = q["overall"]
            lines.append(f"Eval (held-out, Griffin-Lim): WER {o.get('wer')} vs teacher {o.get('teacher_wer')} "
                         f"(ratio {o.get('wer_ratio')}), MCD {o.get('mcd_db')} dB; hard-sentence alignment "
                         f"failures: {q.get('hard', {}).get('failures', '?')}/{q.get('hard', {}).get('sentences', '?')}")
        out.append("\n\n".join(lines))
    return "\n\n".join(out) or "No models found."


def _reports() -> dict:
    d = Path(__file__).resolve().parent.parent.parent / "reports"
    out = {}
    for p in d.glob("*.json") if d.is_dir() else []:
        try:
            out[p.stem] = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return out
