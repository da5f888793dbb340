"""The in-process inference engine every front end shares (UI, CLI, Python API).

    from studio.engine import Engine
    take = Engine().synthesize("Hello there.", voice="slt")

Stages are public and composable: `prepare` (text -> sentences of ids), `acoustic_model(...)
.infer` (ids -> mel), `vocode` (mel -> wav); `synthesize` runs them for one script line and
returns a `Take`; `stream` yields one Take per sentence as each finishes. Checkpoints are
discovered in `checkpoints/` (or `$STUDIO_CHECKPOINTS`, or a folder given to `Engine`), loaded
lazily once and cached. Safe to call from several threads: models are only read, dropout masks
come from per-call generators, and loading is locked.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from studio.audio import AudioConfig, griffin_lim
from studio.checkpoint import config_from_dict, load_checkpoint, load_state
from studio.errors import CheckpointError, EngineError
from studio.eval.health import alignment_health
from studio.text import Frontend, Prepared, TextError, Vocab, split_lexicon, unreadable_warning

log = logging.getLogger(__name__)

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
MODEL_ALIASES = {"transformer": "transformer_tts", "griffin-lim": "griffinlim", "gl": "griffinlim"}
# Not a checkpoint: per voice, the vocoder measured best on that voice (`Engine.pick_vocoder`).
AUTO_VOCODER = "auto"
SENTENCE_GAP_S = 0.2  # silence between sentences of one line
MAX_LINE_CHARS = 2000  # longer lines are refused (configurable per Engine)


@dataclass
class Voice:
    id: str
    name: str
    language: str
    teacher: str
    models: list[str] = field(default_factory=list)


@dataclass
class ModelInfo:
    name: str
    model_type: str
    kind: str  # "acoustic" or "vocoder"
    path: Path | None
    audio: AudioConfig | None
    speakers: list[dict]
    metrics: dict
    config: dict


@dataclass
class Segment:
    """One sentence of a take, as the acoustic model produced it."""

    text: str
    tokens: list[str]
    mel: np.ndarray  # (T_mel, n_mels) postnet output
    mel_before: np.ndarray  # (T_mel, n_mels)
    alignment: np.ndarray  # (T_dec, T_text) or (L, H, T_dec, T_text)
    timing_alignment: np.ndarray  # (T_dec, T_text): the one word timings and health are read from
    stop: np.ndarray  # (T_dec,)
    health: dict
    words: list[tuple[str, float, float]]  # relative to the segment start, seconds at speed 1
    offset_s: float = 0.0  # where the segment starts in the take's audio (speed applied)
    duration_s: float = 0.0  # its length in the take's audio (speed applied)
    retake: str = ""  # what the engine changed to get a healthy alignment ("" if nothing)
    attempts: int = 1  # how many takes of this sentence the engine made


@dataclass
class Take:
    """One synthesized line: audio plus everything needed to inspect it."""

    text: str
    voice: str
    model: str
    vocoder: str
    audio: np.ndarray
    sample_rate: int
    segments: list[Segment]
    settings: dict
    timings: dict

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def words(self) -> list[tuple[str, float, float]]:
        """(word, start, end) in seconds of this take's audio (speed applied)."""
        k = 1.0 / self.settings.get("speed", 1.0)
        return [(w, round(min(s * k, seg.duration_s) + seg.offset_s, 3),
                 round(min(e * k, seg.duration_s) + seg.offset_s, 3))
                for seg in self.segments for w, s, e in seg.words]

    @property
    def ok(self) -> bool:
        return all(seg.health["ok"] for seg in self.segments)

    @property
    def health(self) -> dict:
        verdicts = [s.health["verdict"] for s in self.segments if not s.health["ok"]]
        return {
            "ok": self.ok,
            "verdict": "healthy" if not verdicts else "; ".join(verdicts),
            "focus_rate": float(np.mean([s.health["focus_rate"] for s in self.segments])),
            "monotonicity": float(np.min([s.health["monotonicity"] for s in self.segments])),
            "coverage": float(np.min([s.health["coverage"] for s in self.segments])),
            "retakes": [s.retake for s in self.segments if s.retake],
            "attempts": sum(s.attempts for s in self.segments),
        }

    @property
    def mel(self) -> np.ndarray:
        return np.concatenate([s.mel for s in self.segments], axis=0)

    @property
    def warning(self) -> str | None:
        """What of the text was not spoken (emoji, other scripts), in words; None if all was."""
        return unreadable_warning(self.text)

    def metadata(self) -> dict:
        """JSON-ready description (everything but the arrays)."""
        return {
            "text": self.text, "voice": self.voice, "model": self.model, "vocoder": self.vocoder,
            "duration_s": round(self.duration, 3), "sample_rate": self.sample_rate,
            "settings": self.settings, "timings": self.timings, "health": self.health,
            "words": [{"word": w, "start": round(s, 3), "end": round(e, 3)} for w, s, e in self.words],
            "warning": self.warning,
        }


class LoadedAcoustic:
    """An acoustic model ready for inference, with its front-end and audio config."""

    def __init__(self, blob: dict, name: str):
        self.name = name
        self.model_type = blob["model_type"]
        self.audio = AudioConfig.from_dict(blob["audio"])
        if not blob.get("vocab"):
            raise CheckpointError(f"{name} has no vocab")
        self.vocab = Vocab(blob["vocab"])
        self.speakers = blob.get("speakers") or [{"id": "default", "name": "Default"}]
        self.speaker_index = {s["id"]: i for i, s in enumerate(self.speakers)}
        self.metrics = blob.get("metrics", {})
        if self.model_type == "tacotron":
            from studio.models.tacotron import Tacotron as Model, TacotronConfig as Config
        elif self.model_type == "transformer_tts":
            from studio.models.transformer_tts import TransformerTTS as Model, TransformerTTSConfig as Config
        else:
            raise CheckpointError(f"{name} is a {self.model_type}, not an acoustic model")
        self.config = config_from_dict(Config, blob["config"])
        if self.config.n_symbols != len(self.vocab) or self.config.n_speakers != len(self.speakers):
            raise CheckpointError(f"{name}: config does not match its vocab or speaker list")
        self.model = Model(self.config)
        load_state(self.model, blob["state_dict"], name)
        self.model.eval()
        self.frontend = Frontend(self.vocab, getattr(self.config, "frontend", "phonemes"))
        self.parameters = sum(p.numel() for p in self.model.parameters())


class Engine:
    def __init__(self, checkpoint_dir: str | Path | None = None, max_line_chars: int = MAX_LINE_CHARS,
                 lexicon: dict[str, str] | None = None):
        self.dir = Path(checkpoint_dir or os.environ.get("STUDIO_CHECKPOINTS") or DEFAULT_DIR)
        self.max_line_chars = max_line_chars
        self.lexicon = dict(lexicon or {})
        self._lock = threading.Lock()
        self._acoustic: dict[str, LoadedAcoustic] = {}
        self._vocoders: dict[str, object] = {}
        self._infos = self._discover()

    # ------------------------------------------------------------------ registry

    def _discover(self) -> dict[str, ModelInfo]:
        infos: dict[str, ModelInfo] = {
            "griffinlim": ModelInfo("griffinlim", "griffinlim", "vocoder", None, None, [], {}, {})
        }
        if not self.dir.is_dir():
            log.warning("checkpoint folder %s does not exist", self.dir)
            return infos
        for path in sorted(self.dir.glob("*.pt")):
            try:
                blob = load_checkpoint(path)
            except CheckpointError as e:
                log.warning("skipping %s: %s", path.name, e)
                continue
            kind = "vocoder" if blob["model_type"] == "wavenet" else "acoustic"
            infos[path.stem] = ModelInfo(path.stem, blob["model_type"], kind, path,
                                         AudioConfig.from_dict(blob["audio"]), blob.get("speakers") or [],
                                         blob.get("metrics") or {}, blob["config"])
        return infos

    def models(self, kind: str | None = None) -> list[ModelInfo]:
        return [m for m in self._infos.values() if kind is None or m.kind == kind]

    def voices(self, model: str | None = None) -> list[Voice]:
        voices: dict[str, Voice] = {}
        for m in self.models("acoustic"):
            if model and m.name != self._resolve(model):
                continue
            for s in m.speakers:
                v = voices.setdefault(s["id"], Voice(s["id"], s.get("name", s["id"]), s.get("language", "en-US"),
                                                     s.get("teacher", "")))
                v.models.append(m.name)
        return list(voices.values())

    def _resolve(self, name: str) -> str:
        return MODEL_ALIASES.get(name, name)

    def info(self, name: str, kind: str | None = None) -> ModelInfo:
        name = self._resolve(name)
        info = self._infos.get(name)
        if info is None or (kind and info.kind != kind):
            known = ", ".join(m.name for m in self.models(kind)) or "none"
            label = {"acoustic": "model", "vocoder": "vocoder"}.get(kind, "model")
            raise EngineError(f"unknown {label} {name!r} (available: {known})")
        return info

    def acoustic_model(self, name: str) -> LoadedAcoustic:
        info = self.info(name, "acoustic")
        with self._lock:
            if info.name not in self._acoustic:
                t = time.time()
                am = LoadedAcoustic(load_checkpoint(info.path), info.name)
                am.frontend.g2p.lexicon = {k.lower(): v for k, v in self.lexicon.items()}
                self._acoustic[info.name] = am
                log.info("loaded %s in %.2f s", info.name, time.time() - t)
            return self._acoustic[info.name]

    def vocoder_names(self) -> list[str]:
        """What a vocoder setting may name: "auto", then every vocoder."""
        return [AUTO_VOCODER] + [m.name for m in self.models("vocoder")]

    def pick_vocoder(self, voice: str | None, audio: AudioConfig) -> str:
        """What "auto" means for `voice`: a trained vocoder for `audio` whose copy synthesis of that
        voice's held-out lines beat Griffin-Lim's on both PESQ and STOI (its checkpoint's
        metrics["copy_synthesis"]["by_voice"]; the best PESQ of several), else Griffin-Lim."""
        best, best_pesq = "griffinlim", -math.inf
        for m in self.models("vocoder"):
            v = ((m.metrics or {}).get("copy_synthesis") or {}).get("by_voice", {}).get(voice or "")
            if m.audio != audio or not isinstance(v, dict):
                continue
            try:
                better = v["pesq"] > v["griffinlim_pesq"] and v["stoi"] >= v["griffinlim_stoi"]
            except (KeyError, TypeError):
                continue
            if better and v["pesq"] > best_pesq:
                best, best_pesq = m.name, v["pesq"]
        return best

    def resolve_vocoder(self, name: str, voice: str | None, audio: AudioConfig) -> str:
        return self.pick_vocoder(voice, audio) if self._resolve(name) == AUTO_VOCODER else name

    def vocoder(self, name: str, audio: AudioConfig, voice: str | None = None):
        """A callable mel (T_mel, n_mels) -> wav for `audio`; a clear error when they cannot pair.
        `name` may be "auto" (`pick_vocoder`)."""
        info = self.info(self.resolve_vocoder(name, voice, audio), "vocoder")
        if info.model_type == "griffinlim":
            return lambda mel: griffin_lim(mel, audio)
        if info.audio != audio:
            raise EngineError(
                f"vocoder {info.name!r} was trained on different audio settings than the acoustic model "
                f"({_audio_diff(info.audio, audio)}); pick another vocoder"
            )
        with self._lock:
            if info.name not in self._vocoders:
                from studio.vocoders.wavenet import WaveNetVocoder

                self._vocoders[info.name] = WaveNetVocoder.from_checkpoint(info.path)
            voc = self._vocoders[info.name]
        return lambda mel: voc.infer(mel, voice)

    # ------------------------------------------------------------------ stages

    def prepare(self, text: str, model: str = "tacotron", lexicon: dict[str, str] | None = None) -> list[Prepared]:
        """text -> normalised sentences with their symbols and ids. `lexicon`: this call's
        pronunciations, word -> respelling or "/phonemes/" (a script's `@say` lines)."""
        if not text or not text.strip():
            raise TextError("the text is empty")
        if len(text) > self.max_line_chars:
            raise TextError(f"the line has {len(text)} characters; the limit is {self.max_line_chars} "
                            "(split it into several lines)")
        am = self.acoustic_model(model)
        _, phonemes = split_lexicon(lexicon)
        if am.frontend.kind == "phonemes":
            for word, ph in phonemes.items():
                unknown = sorted({ch for ch in ph if ch != " " and ch not in am.frontend.vocab})
                if unknown:
                    raise TextError(f"the pronunciation of '{word}' has symbols {am.name} does not know: "
                                    f"{' '.join(unknown)} (use espeak IPA, e.g. /dʒˈɪf/)")
        return am.frontend.prepare(text, lexicon=lexicon)

    def _speaker(self, am: LoadedAcoustic, voice: str) -> int:
        if voice not in am.speaker_index:
            raise EngineError(f"unknown voice {voice!r} for {am.name} (voices: {', '.join(am.speaker_index)})")
        return am.speaker_index[voice]

    def _infer_segment(self, am: LoadedAcoustic, p: Prepared, speaker: int, seed: int, retake: bool,
                       phonemes: dict[str, str] | None = None) -> Segment:
        attempts = [("", {})]
        if retake and getattr(am.model, "duration_predictor", None) is not None:
            attempts += [("attention pinned to predicted durations", {"guide": "duration"})]
        if retake:
            attempts += [("tighter attention window", {"window_ahead": 2}),
                         ("new dropout seed", {"seed": seed + 1000}),
                         ("tighter window and new seed", {"window_ahead": 2, "seed": seed + 2000})]
        best, tried = None, 0
        for label, kw in attempts:
            tried += 1
            out = am.model.infer(torch.tensor(p.ids), speaker=speaker, **{"seed": seed, **kw})
            seg = self._segment(am, p, out)
            seg.retake = label
            if best is None or _health_score(seg.health) > _health_score(best.health):
                best = seg
            if seg.health["ok"]:
                break
        if retake and not best.health["ok"]:
            split = self._split_retake(am, p, speaker, seed, phonemes)
            tried += split is not None
            if split is not None and _health_score(split.health) > _health_score(best.health):
                best = split
        best.attempts = tried
        return best

    def _split_retake(self, am: LoadedAcoustic, p: Prepared, speaker: int, seed: int,
                      phonemes: dict[str, str] | None = None) -> Segment | None:
        """Last resort: say the sentence clause by clause and join the pieces."""
        clauses = [c.strip() for c in re.split(r"(?<=[,;:])\s+", p.normalized) if c.strip()]
        if len(clauses) < 2:
            return None
        parts = []
        for c in clauses:
            sub = am.frontend.prepare(c, lexicon=phonemes)[0]
            parts.append(self._segment(am, sub, am.model.infer(torch.tensor(sub.ids), speaker=speaker, seed=seed,
                                                                 window_ahead=2)))
        seg = _join_segments(p.normalized, parts, am.audio)
        seg.retake = f"split into {len(parts)} clauses"
        return seg

    def _segment(self, am: LoadedAcoustic, p: Prepared, out) -> Segment:
        align = out.alignment.float().cpu().numpy()
        timing = align if out.timing_alignment is None else out.timing_alignment.float().cpu().numpy()
        stop = out.stop.float().cpu().numpy()
        health = alignment_health(timing, stop, am.config.stop_threshold, hit_limit=out.hit_limit)
        _name_problems(health, p.tokens)
        seconds_per_step = out.frames_per_step * am.audio.hop_length / am.audio.sample_rate
        words = word_times(p.normalized, p.tokens, timing, seconds_per_step)
        return Segment(p.normalized, p.tokens, out.mel.float().cpu().numpy(), out.mel_before.float().cpu().numpy(),
                       align, timing, stop, health, words)

    def vocode(self, mel: np.ndarray, vocoder: str, audio: AudioConfig, voice: str | None = None) -> np.ndarray:
        return self.vocoder(vocoder, audio, voice)(mel)

    # ------------------------------------------------------------------ synthesis

    def stream(self, text: str, voice: str, model: str = "tacotron", vocoder: str = "griffinlim",
               speed: float = 1.0, pitch: float = 0.0, seed: int = 0, retake: bool = True,
               lexicon: dict[str, str] | None = None):
        """Yield one Take per sentence of `text` as soon as each is ready."""
        for p in self.prepare(text, model, lexicon):
            yield self._synthesize_prepared([p], text=p.normalized, voice=voice, model=model, vocoder=vocoder,
                                            speed=speed, pitch=pitch, seed=seed, retake=retake, lexicon=lexicon)

    def synthesize(self, text: str, voice: str, model: str = "tacotron", vocoder: str = "griffinlim",
                   speed: float = 1.0, pitch: float = 0.0, seed: int = 0, retake: bool = True,
                   lexicon: dict[str, str] | None = None) -> Take:
        """One script line (one or more sentences) -> a Take. `lexicon`: see `prepare`."""
        return self._synthesize_prepared(self.prepare(text, model, lexicon), text=text, voice=voice, model=model,
                                         vocoder=vocoder, speed=speed, pitch=pitch, seed=seed, retake=retake,
                                         lexicon=lexicon)

    def _synthesize_prepared(self, prepared: list[Prepared], text: str, voice: str, model: str, vocoder: str,
                             speed: float, pitch: float, seed: int, retake: bool,
                             lexicon: dict[str, str] | None = None) -> Take:
        _check_settings(speed, pitch)
        am = self.acoustic_model(model)
        speaker = self._speaker(am, voice)
        vocoder = self.resolve_vocoder(vocoder, voice, am.audio)  # the take names the one that ran
        self.vocoder(vocoder, am.audio)  # refuse a mismatched pair before the acoustic work
        # a retake re-prepares clauses of already respelled text: only the phonemes still apply
        respellings, _ = split_lexicon(lexicon)
        phonemes = {w: v for w, v in (lexicon or {}).items() if w not in respellings}
        t0 = time.perf_counter()
        segments = [self._infer_segment(am, p, speaker, seed, retake, phonemes) for p in prepared]
        acoustic_s = time.perf_counter() - t0
        settings = {"speed": speed, "pitch": pitch, "seed": seed, "retake": retake}
        return self._assemble(am, segments, text, voice, vocoder, settings, acoustic_s)

    def respeed(self, take: Take, speed: float) -> Take:
        """The same take at another speaking rate: the mels are re-timed and re-vocoded, the
        acoustic model does not run again (so the words and prosody stay the same)."""
        am = self.acoustic_model(take.model)
        return self._assemble(am, take.segments, take.text, take.voice, take.vocoder,
                              {**take.settings, "speed": speed}, 0.0)

    def _assemble(self, am: LoadedAcoustic, segments: list[Segment], text: str, voice: str, vocoder: str,
                  settings: dict, acoustic_s: float) -> Take:
        speed, pitch = settings["speed"], settings["pitch"]
        _check_settings(speed, pitch)
        vocode = self.vocoder(vocoder, am.audio, voice)
        sr = am.audio.sample_rate
        t1 = time.perf_counter()
        pieces, offset, placed = [], 0.0, []
        gap_s = SENTENCE_GAP_S / speed  # a faster read shortens its pauses too (a dub fitting its slot)
        gap = np.zeros(int(round(gap_s * sr)), dtype=np.float32)
        for i, seg in enumerate(segments):
            wav = vocode(stretch_mel(seg.mel, speed))
            if pitch:
                wav = shift_pitch(wav, sr, pitch)
            placed.append(dataclasses.replace(seg, offset_s=offset, duration_s=len(wav) / sr))
            pieces.append(wav)
            offset += len(wav) / sr
            if i < len(segments) - 1:
                pieces.append(gap)
                offset += len(gap) / sr
        audio = np.concatenate(pieces).astype(np.float32)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 0.99:
            audio *= 0.99 / peak
        vocoder_s = time.perf_counter() - t1
        dur = len(audio) / sr
        compute = acoustic_s + vocoder_s
        timings = {"acoustic_s": round(acoustic_s, 3), "vocoder_s": round(vocoder_s, 3),
                   "compute_s": round(compute, 3), "audio_s": round(dur, 3),
                   "rtf": round(compute / max(dur, 1e-6), 3)}
        return Take(text, voice, am.name, self.info(vocoder, "vocoder").name, audio, sr, placed, settings, timings)


# ---------------------------------------------------------------------------------------------
# helpers


def _check_settings(speed: float, pitch: float) -> None:
    if not 0.5 <= speed <= 2.0:
        raise EngineError(f"speed {speed} is outside 0.5 to 2.0")
    if not -12 <= pitch <= 12:
        raise EngineError(f"pitch {pitch} is outside -12 to +12 semitones")


def _audio_diff(a: AudioConfig, b: AudioConfig) -> str:
    da, db = a.to_dict(), b.to_dict()
    return ", ".join(f"{k} {da[k]} vs {db[k]}" for k in da if da[k] != db[k])


def _health_score(h: dict) -> float:
    return (not h["runaway"]) * 4 + (not h["skips"]) * 2 + (not h["repeats"]) * 2 + h["coverage"] + h["focus_rate"]


def _name_problems(health: dict, tokens: list[str]) -> None:
    """Add the symbols a skip jumped over, so the verdict can say what was lost."""
    health["skipped_tokens"] = ["".join(tokens[a + 1 : b]) for _, a, b in health["skips"]]


def word_spans(tokens: list[str]) -> list[tuple[int, int]]:
    """Token index ranges [start, end) of each word: runs of symbols between spaces/punctuation."""
    spans, start = [], None
    for i, t in enumerate(tokens):
        boundary = t in (" ", "~") or t in ",.!?;:"
        if boundary and start is not None:
            spans.append((start, i))
            start = None
        elif not boundary and start is None:
            start = i
    if start is not None:
        spans.append((start, len(tokens)))
    return spans


def word_times(text: str, tokens: list[str], alignment: np.ndarray, seconds_per_step: float
               ) -> list[tuple[str, float, float]]:
    """Start and end time of each word, read off the attention peaks.

    A word spans from the first decoder step whose attention peak falls on one of its symbols
    to the last such step. Times are forced monotonic so subtitles never run backwards.
    """
    spans = word_spans(tokens)
    names = [w for w in text.split() if any(ch.isalnum() for ch in w)]  # punctuation stays on its word
    if len(names) != len(spans):  # espeak merged or split words: label by position instead
        names = names[: len(spans)] + ["…"] * max(0, len(spans) - len(names))
    peaks = alignment.argmax(axis=1) if len(alignment) else np.zeros(0, dtype=int)
    total = len(peaks) * seconds_per_step
    out, last_end = [], 0.0
    for name, (a, b) in zip(names, spans):
        steps = np.nonzero((peaks >= a) & (peaks < b))[0]
        if len(steps):
            start, end = steps[0] * seconds_per_step, (steps[-1] + 1) * seconds_per_step
        else:  # never the peak (a short word): give it a sliver after the previous one
            start, end = last_end, last_end
        start = max(start, last_end)
        end = min(max(end, start), total)
        out.append((name, round(float(start), 3), round(float(end), 3)))
        last_end = end
    return out


def _join_segments(text: str, parts: list[Segment], audio: AudioConfig) -> Segment:
    """Concatenate clause segments into one (block-diagonal alignment)."""
    T_dec = sum(p.timing_alignment.shape[0] for p in parts)
    T_text = sum(p.timing_alignment.shape[1] for p in parts)
    align = np.zeros((T_dec, T_text), dtype=np.float32)
    words, r0, c0, t_off = [], 0, 0, 0.0
    for p in parts:
        a = p.timing_alignment
        align[r0 : r0 + a.shape[0], c0 : c0 + a.shape[1]] = a
        words += [(w, s + t_off, e + t_off) for w, s, e in p.words]
        t_off += len(p.mel) * audio.hop_length / audio.sample_rate
        r0, c0 = r0 + a.shape[0], c0 + a.shape[1]
    stop = np.concatenate([p.stop for p in parts])
    health = alignment_health(align, None)
    health["runaway"] = any(p.health["runaway"] for p in parts)
    health["ok"] = health["ok"] and not health["runaway"]
    health["skipped_tokens"] = []
    return Segment(text, [t for p in parts for t in p.tokens], np.concatenate([p.mel for p in parts]),
                   np.concatenate([p.mel_before for p in parts]), align, align, stop, health, words)


def stretch_mel(mel: np.ndarray, speed: float) -> np.ndarray:
    """Change the speaking rate by resampling the mel in time: pitch is untouched because the
    vocoder re-creates the waveform at the normal hop from the stretched frames."""
    if abs(speed - 1.0) < 1e-3:
        return mel
    T = max(1, int(round(len(mel) / speed)))
    x = torch.from_numpy(np.ascontiguousarray(mel.T))[None]  # (1, n_mels, T_mel)
    return F.interpolate(x, size=T, mode="linear", align_corners=False)[0].T.numpy()  # (T', n_mels)


def shift_pitch(wav: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    import librosa

    return librosa.effects.pitch_shift(wav, sr=sample_rate, n_steps=semitones).astype(np.float32)
