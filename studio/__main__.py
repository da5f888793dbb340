"""Command line: `python -m studio COMMAND ...` (every command takes --json).

    text TEXT                      what the models will be fed (normalised, sentences, phonemes)
    voices / models                what the shipped checkpoints offer
    speak TEXT --voice V -o OUT.wav
    render SCRIPT.txt -o OUT.wav [--srt OUT.srt] [--vtt OUT.vtt] [--project OUT.json]
    dub SUBS.srt -o TRACK.wav [--srt OUT.srt]
    render/dub ... --background SOUNDTRACK.wav [--duck-db 12] [--voice-only VOICES.wav]
    eval quality|speed|report

Bad input ends with one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from studio.errors import StudioError


def _print(args, payload: dict, human: str) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False) if args.json else human)


def _engine(args):
    from studio.engine import Engine

    lexicon = None
    if args.lexicon:
        try:
            lexicon = json.loads(_read_text(args.lexicon))
        except json.JSONDecodeError as e:
            raise StudioError(f"{args.lexicon} is not valid JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(lexicon, dict) or not all(isinstance(v, str) for v in lexicon.values()):
            raise StudioError(f"{args.lexicon} must map words to phoneme strings, e.g. {{\"gif\": \"dʒˈɪf\"}}")
    return Engine(args.checkpoints, lexicon=lexicon)


def cmd_text(args) -> None:
    from studio.text import Frontend, Vocab, normalize, split_sentences

    norm = normalize(args.text)
    sentences = split_sentences(norm)
    fe = Frontend(Vocab.phonemes(), "phonemes")
    phonemes = [fe.symbols(s) for s in sentences]
    payload = {"input": args.text, "normalized": norm, "sentences": sentences, "phonemes": phonemes}
    human = f"normalized: {norm}\n" + "\n".join(f"  [{i + 1}] {s}\n      {p}" for i, (s, p) in
                                                 enumerate(zip(sentences, phonemes)))
    _print(args, payload, human)


def cmd_voices(args) -> None:
    engine = _engine(args)
    voices = engine.voices()
    payload = {"voices": [v.__dict__ for v in voices]}
    if args.samples:
        from studio.audio import save_wav
        from studio.ui.handlers import VOICE_SAMPLE

        written = []
        for v in voices:
            for model in v.models:
                take = engine.synthesize(VOICE_SAMPLE, voice=v.id, model=model)
                written.append(str(save_wav(args.samples / f"{model}_{v.id}.wav", take.audio, take.sample_rate)))
        payload["samples"] = written
    human = "\n".join(f"{v.id:8s} {v.name:28s} {v.language:6s} models: {', '.join(v.models)}  ({v.teacher})"
                      for v in voices) or "no voices: no acoustic checkpoints found"
    _print(args, payload, human)


def cmd_models(args) -> None:
    models = _engine(args).models()
    payload = {"models": [{"name": m.name, "type": m.model_type, "kind": m.kind,
                           "path": str(m.path) if m.path else None, "voices": [s["id"] for s in m.speakers],
                           "metrics": m.metrics} for m in models]}
    human = "\n".join(f"{m.name:16s} {m.kind:9s} {m.model_type:16s} "
                      f"{('voices: ' + ', '.join(s['id'] for s in m.speakers)) if m.speakers else ''}"
                      for m in models)
    _print(args, payload, human)


def cmd_speak(args) -> None:
    from studio.audio import check_audio_suffix, save_wav

    check_audio_suffix(args.output)
    engine = _engine(args)
    take = engine.synthesize(args.text, voice=args.voice, model=args.model, vocoder=args.vocoder,
                             speed=args.speed, pitch=args.pitch, seed=args.seed)
    save_wav(args.output, take.audio, take.sample_rate)
    meta = take.metadata()
    meta["output"] = str(args.output)
    t = take.timings
    _print(args, meta, f"wrote {args.output}: {t['audio_s']:.2f} s of audio in {t['compute_s']:.2f} s "
                       f"(RTF {t['rtf']:.2f}); alignment {take.health['verdict']}")
    if take.warning and not args.json:
        print(f"warning: {take.warning}", file=sys.stderr)


def cmd_render(args) -> None:
    from studio.render import render_script

    text = _read_text(args.script)
    _check_outputs(args)
    background = _read_background(args)
    result = render_script(_engine(args), text, model=args.model, vocoder=args.vocoder,
                           progress=not args.json)
    _write_outputs(args, result, background)


def cmd_dub(args) -> None:
    from studio.render import dub_subtitles

    text = _read_text(args.subtitles)
    _check_outputs(args)
    background = _read_background(args)
    cast = {}
    for pair in args.cast or []:
        name, sep, voice = pair.partition("=")
        if not sep or not name.strip() or not voice.strip():
            raise StudioError(f"--cast expects NAME=VOICE (e.g. JOHN=rms), got {pair!r}")
        cast[name.strip()] = voice.strip()
    result = dub_subtitles(_engine(args), text, voice=args.voice, model=args.model, vocoder=args.vocoder,
                           max_rate=args.max_rate, progress=not args.json, cast=cast)
    _write_outputs(args, result, background)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise StudioError(f"file not found: {path}")
    if path.stat().st_size > 5_000_000:
        raise StudioError(f"{path} is larger than 5 MB")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise StudioError(f"{path} is not UTF-8 text") from None


def _check_outputs(args) -> None:
    from studio.audio import check_audio_suffix

    for path in (args.output, args.voice_only):
        if path is not None:
            check_audio_suffix(path)


def _read_background(args) -> tuple | None:
    """--background's audio, read before any rendering so a bad file costs nothing."""
    from studio.render import read_background

    if not 0.0 <= args.duck_db <= 60.0:
        raise StudioError(f"--duck-db must be 0 to 60, got {args.duck_db:g}")
    return read_background(args.background) if args.background else None


def _write_outputs(args, result, background: tuple | None = None) -> None:
    from studio.audio import save_wav

    if background is not None:
        background, background_sr = background
        written = [str(save_wav(args.output, result.mix(background, background_sr, args.duck_db), background_sr))]
        if args.voice_only:
            written.append(str(save_wav(args.voice_only, result.audio, result.sample_rate)))
    else:
        written = [str(save_wav(args.output, result.audio, result.sample_rate))]
    if getattr(args, "stems", None):
        for voice, stem in result.stems().items():
            written.append(str(save_wav(Path(args.stems) / f"{voice}.wav", stem, result.sample_rate)))
    for attr, writer in (("srt", result.srt), ("vtt", result.vtt)):
        out = getattr(args, attr, None)
        if out:
            Path(out).write_text(writer(), encoding="utf-8")
            written.append(str(out))
    if getattr(args, "project", None):
        Path(args.project).write_text(json.dumps(result.project(), indent=2), encoding="utf-8")
        written.append(str(args.project))
    summary = result.summary()
    summary["written"] = written
    _print(args, summary, "\n".join(result.report_lines()) + "\nwrote " + ", ".join(written))


def cmd_eval(args) -> None:
    from studio.eval.cli import run_eval

    run_eval(args)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m studio", description="AI dubbing studio command line.")
    ap.add_argument("--checkpoints", type=Path, help="checkpoint folder (default: checkpoints/ or $STUDIO_CHECKPOINTS)")
    ap.add_argument("--lexicon", type=Path, help='JSON file of pronunciations, e.g. {"gif": "dʒˈɪf"} (espeak IPA)')
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    def add(name, fn, help):
        p = sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", help="print machine-readable JSON")
        p.set_defaults(fn=fn)
        return p

    def synth_opts(p, voice_required=True):
        p.add_argument("--model", default="tacotron", help="acoustic model (tacotron, transformer)")
        p.add_argument("--vocoder", default="auto",
                       help="vocoder (griffinlim, wavenet, or auto: per voice, the one measured best on it)")
        if voice_required:
            p.add_argument("--voice", required=True)

    def mix_opts(p):
        p.add_argument("--background", type=Path, help="mix the voices over this audio (the original soundtrack "
                       "or a music bed; WAV, FLAC, OGG, MP3): -o gets the mix at its rate and channels")
        p.add_argument("--duck-db", type=float, default=12.0, help="how far the background dips under speech")
        p.add_argument("--voice-only", type=Path, help="with --background, also write the voices alone here")
        p.add_argument("--stems", type=Path, metavar="DIR",
                       help="also write each voice's stem here (DIR/VOICE.wav, the track's length; they add up to it)")

    p = add("text", cmd_text, "show normalisation, sentences and phonemes")
    p.add_argument("text")
    p = add("voices", cmd_voices, "list voices")
    p.add_argument("--samples", type=Path, help="also write a sample of each voice (MODEL_VOICE.wav) here")
    add("models", cmd_models, "list models and vocoders")
    p = add("speak", cmd_speak, "synthesize one line")
    p.add_argument("text")
    synth_opts(p)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--pitch", type=float, default=0.0, help="semitones")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, required=True)
    p = add("render", cmd_render, "render a script to a track")
    p.add_argument("script", type=Path)
    synth_opts(p, voice_required=False)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--srt", type=Path)
    p.add_argument("--vtt", type=Path)
    p.add_argument("--project", type=Path)
    mix_opts(p)
    p = add("dub", cmd_dub, "fit speech to a subtitle file's time slots")
    p.add_argument("subtitles", type=Path)
    synth_opts(p, voice_required=False)
    p.add_argument("--voice", default=None, help="voice for cues without a speaker (default: first voice)")
    p.add_argument("--max-rate", type=float, default=1.6, help="fastest speed-up allowed to fit a slot")
    p.add_argument("--cast", action="append", metavar="NAME=VOICE",
                   help="voice for a labelled speaker (JOHN: ...); others get a voice of their own")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--srt", type=Path)
    p.add_argument("--vtt", type=Path)
    p.add_argument("--project", type=Path)
    mix_opts(p)
    p = add("eval", cmd_eval, "measure quality and speed")
    from studio.eval.cli import add_eval_arguments

    add_eval_arguments(p)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        args.fn(args)
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # TextError and argument values
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # "python -m studio text ... | head -1": the reader left; say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # or exit's flush raises again
        return 141  # 128 + SIGPIPE, as a shell reports it
    except Exception as e:  # noqa: BLE001 - the CLI's promise is one line, never a traceback
        if args.verbose:
            raise
        print(f"error: unexpected {type(e).__name__}: {e} (rerun with -v for details)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
