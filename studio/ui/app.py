"""The studio's Gradio Blocks: Studio (write, cast, generate, inspect, export), Compare, Dub,
Voices and Models tabs. Layout and wiring only; behaviour lives in `studio.ui.handlers`."""

from __future__ import annotations

import os
import threading

import gradio as gr

from studio.ui import handlers as h
from studio.vocoders import native

CSS = """
#status {min-height: 2.5em}
.verdict {font-size: 0.95em}
footer {display: none !important}
"""

LIMITS_NOTE = (f"Limits: {h.LIMITS['max_line_chars']} characters per line, {h.LIMITS['max_lines']} lines per "
               f"script, uploads up to {h.MAX_UPLOAD_BYTES // 1_000_000} MB. Script syntax: `Speaker: text`, "
               "`@cast Speaker = voice [speed=1.1 pitch=-2]`, `[voice=rms speed=0.9] text`, `[pause 0.5s]`, "
               "`<break time=\"500ms\"/>`, `# comment`; pronunciations: `@say SQL = sequel`, "
               "`@say gif = /dʒˈɪf/` (espeak IPA).")


def build_app() -> gr.Blocks:
    engine = h.get_engine()
    acoustic = h.model_choices("acoustic")
    vocoders = h.vocoder_choices()
    default_model = "tacotron" if "tacotron" in acoustic else (acoustic[0] if acoustic else None)
    voices = h.voice_choices(default_model)
    default_voice = voices[0][1] if voices else None
    examples = h.example_scripts()
    first_example = next(iter(examples.values()), "Narrator: Hello there.")

    with gr.Blocks(title="Dubbing Studio", analytics_enabled=False) as app:
        session = gr.State(h.new_session)
        gr.Markdown("# Dubbing Studio\nWrite a script, cast a voice for each speaker, listen to every take, "
                    "look inside the model when a line sounds wrong, and export the track with its subtitles.")
        if not acoustic:
            gr.Markdown(f"⚠️ No acoustic model checkpoints were found in `{engine.dir}`.")

        with gr.Tab("Studio", id="studio"):
            with gr.Row():
                with gr.Column(scale=3):
                    with gr.Row():
                        example = gr.Dropdown(list(examples), label="Example scripts", value=None, scale=3)
                        load_ex = gr.Button("Load example", scale=1)
                    script = gr.Textbox(first_example, lines=14, max_lines=40, label="Script",
                                        elem_id="script", placeholder="Narrator: Hello there.")
                    gr.Markdown(LIMITS_NOTE)
                with gr.Column(scale=2):
                    model = gr.Dropdown(acoustic, value=default_model, label="Model", elem_id="model")
                    vocoder = gr.Dropdown(vocoders, value="auto", label="Vocoder", elem_id="vocoder")
                    voice = gr.Dropdown(voices, value=default_voice, label="Default voice (lines without a speaker)",
                                        elem_id="voice")
                    speed = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="Speed (lines without their own)")
                    pitch = gr.Slider(-12, 12, value=0, step=0.5, label="Pitch, semitones")
                    cast = gr.Dataframe(h.detect_cast(first_example), headers=["speaker", "voice"],
                                        label="Cast (speaker → voice)", interactive=True, column_count=(2, "fixed"))
                    with gr.Row():
                        detect = gr.Button("Detect speakers", size="sm")
                        apply = gr.Button("Apply cast to script", size="sm")
            with gr.Row():
                generate = gr.Button("Generate", variant="primary", elem_id="generate", scale=2)
                stop = gr.Button("Stop", scale=1)
            status = gr.Markdown("", elem_id="status")
            lines_table = gr.Dataframe(headers=h.LINE_HEADERS, label="Takes (click a row to select it)",
                                       interactive=False, wrap=True, elem_id="takes")
            with gr.Row():
                line_audio = gr.Audio(label="Latest / selected take", interactive=False, elem_id="line_audio")
                track_audio = gr.Audio(label="Full track", interactive=False, elem_id="track_audio")
            with gr.Row():
                line_no = gr.Number(label="Selected line", precision=0, minimum=0, scale=1, elem_id="line_no")
                regen = gr.Button("Regenerate line", scale=1)
                inspect_btn = gr.Button("Inspect line", scale=1, elem_id="inspect")
                export_btn = gr.Button("Export track, SRT, WebVTT, project", scale=2)
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False)
            with gr.Accordion("Music bed (optional): exported as track_mix.wav, the track over it", open=False):
                with gr.Row():
                    bed = gr.Audio(label="Background music or ambience", type="filepath", sources=["upload"],
                                   elem_id="bed", scale=3)
                    bed_duck = gr.Slider(0, 30, value=12, step=1, label="Dips under speech by (dB)", scale=1)
            with gr.Accordion("Open a project file", open=False):
                project_file = gr.File(label="Project JSON", file_types=[".json"], type="filepath")
                open_btn = gr.Button("Open project")
            with gr.Accordion("Inspect", open=True):
                with gr.Row():
                    layer = gr.Slider(0, 5, value=0, step=1, label="Decoder layer (Transformer-TTS)")
                    head = gr.Slider(0, 7, value=0, step=1, label="Encoder-decoder head (Transformer-TTS)")
                verdict = gr.Markdown(elem_classes="verdict", elem_id="verdict")
                align_img = gr.Image(label="Attention alignment (text tokens × time, word boundaries marked)",
                                     type="filepath", elem_id="align_img", show_label=False)
                mel_img = gr.Image(label="Mel spectrogram: decoder output and postnet output", type="filepath",
                                   elem_id="mel_img", show_label=False)
                stop_img = gr.Image(label="Stop-token probability", type="filepath", show_label=False)

            load_ex.click(h.load_example, example, script).then(h.detect_cast, script, cast)
            detect.click(h.detect_cast, script, cast)
            apply.click(h.user_errors(h.apply_cast), [script, cast], script)
            model.change(lambda m: gr.update(choices=h.voice_choices(m)), model, voice)
            model.change(h.head_controls, model, [layer, head])
            app.load(h.head_controls, model, [layer, head])
            gen_event = generate.click(
                h.generate, [script, model, vocoder, voice, speed, pitch, session],
                [lines_table, line_audio, track_audio, status, session],
            )
            gen_event.then(h.first_line, session, line_no).then(
                h.line_head_controls, [line_no, session], [layer, head]).then(
                h.inspect, [line_no, layer, head, session], [mel_img, align_img, stop_img, verdict])
            stop.click(None, None, None, cancels=[gen_event])
            lines_table.select(h.select_line, session, line_no).then(
                h.line_head_controls, [line_no, session], [layer, head]).then(
                h.inspect, [line_no, layer, head, session], [mel_img, align_img, stop_img, verdict])
            regen.click(h.regenerate, [line_no, session], [lines_table, line_audio, track_audio, status, session]).then(
                h.inspect, [line_no, layer, head, session], [mel_img, align_img, stop_img, verdict])
            inspect_btn.click(h.inspect, [line_no, layer, head, session], [mel_img, align_img, stop_img, verdict])
            export_btn.click(h.export, [session, bed, bed_duck], downloads)
            open_btn.click(h.open_project, [project_file, session],
                           [script, model, vocoder, voice, speed, pitch, lines_table, status, session]).success(
                h.generate, [script, model, vocoder, voice, speed, pitch, session],
                [lines_table, line_audio, track_audio, status, session])

        with gr.Tab("Compare", id="compare"):
            gr.Markdown("The same line through two configurations, side by side.")
            cmp_text = gr.Textbox("On March 3rd, the ship left the harbour at 9:30 a.m.", label="Line")
            with gr.Row():
                cols = []
                for tag, v_idx in (("A", 0), ("B", 1)):
                    with gr.Column():
                        gr.Markdown(f"### {tag}")
                        m = gr.Dropdown(acoustic, value=default_model, label="Model")
                        vc = gr.Dropdown(vocoders, value="auto", label="Vocoder")
                        vo = gr.Dropdown(voices, value=voices[min(v_idx, len(voices) - 1)][1] if voices else None,
                                         label="Voice")
                        au = gr.Audio(label=f"{tag}: audio", interactive=False)
                        info = gr.Markdown()
                        al = gr.Image(label=f"{tag}: alignment", type="filepath")
                        me = gr.Image(label=f"{tag}: mel", type="filepath")
                        cols.append((m, vc, vo, au, me, al, info))
            cmp_btn = gr.Button("Compare", variant="primary")
            (ma, va, voa, aua, mea, ala, infa), (mb, vb, vob, aub, meb, alb, infb) = cols
            cmp_btn.click(h.compare, [cmp_text, ma, va, voa, mb, vb, vob, session],
                          [aua, mea, ala, infa, aub, meb, alb, infb])

        with gr.Tab("Dub", id="dub"):
            gr.Markdown("Upload subtitles (SRT or WebVTT): every cue is spoken inside its time slot, sped up "
                        "(pitch kept) when needed, up to the rate limit. Cues that still do not fit are marked.")
            with gr.Row():
                with gr.Column():
                    subs_file = gr.File(label="Subtitle file (.srt, .vtt)", file_types=[".srt", ".vtt", ".txt"],
                                        type="filepath")
                    subs_text = gr.Textbox(lines=8, label="…or paste subtitles here")
                    with gr.Row():
                        subs_example = gr.Dropdown(["sample.srt", "sample.vtt"], label="Example", value=None)
                        subs_load = gr.Button("Load example")
                with gr.Column():
                    dub_voice = gr.Dropdown(voices, value=default_voice, label="Voice (cues without a speaker)")
                    dub_model = gr.Dropdown(acoustic, value=default_model, label="Model")
                    dub_vocoder = gr.Dropdown(vocoders, value="auto", label="Vocoder")
                    max_rate = gr.Slider(1.0, 2.0, value=1.6, step=0.05, label="Fastest speed-up allowed")
                    background = gr.Audio(label="Background (optional): the original soundtrack or a music bed; "
                                          "the dub is mixed over it", type="filepath", sources=["upload"],
                                          elem_id="dub_background")
                    duck_db = gr.Slider(0, 30, value=12, step=1, label="Background dips under speech by (dB)")
                    dub_cast = gr.Dataframe(headers=["speaker", "voice"], label="Speakers (JOHN: ...) → voice; "
                                            "empty: each gets a voice of their own", interactive=True,
                                            column_count=(2, "fixed"), elem_id="dub_cast")
                    dub_detect = gr.Button("Detect speakers", size="sm")
                    dub_btn = gr.Button("Dub", variant="primary", elem_id="dub_btn")
            dub_status = gr.Markdown()
            dub_table = gr.Dataframe(headers=h.DUB_HEADERS, label="Timeline", interactive=False, wrap=True)
            dub_audio = gr.Audio(label="Dubbed track", interactive=False)
            with gr.Row():
                cue_no = gr.Number(label="Cue", precision=0, minimum=0, scale=1, elem_id="cue_no")
                redub = gr.Button("Dub this cue again (new take)", scale=2)
            dub_files = gr.File(label="Downloads", file_count="multiple", interactive=False)
            subs_load.click(h.load_example_subtitles, subs_example, subs_text)
            dub_btn.click(h.dub, [subs_file, subs_text, dub_voice, dub_model, dub_vocoder, max_rate, session,
                                  background, duck_db, dub_cast], [dub_table, dub_audio, dub_files, dub_status, session])
            dub_detect.click(h.detect_dub_cast, [subs_file, subs_text, dub_voice, dub_model], dub_cast)
            redub.click(h.redub_cue, [cue_no, session, background, duck_db],
                        [dub_table, dub_audio, dub_files, dub_status, session])
            dub_table.select(h.select_cue, session, cue_no)

        with gr.Tab("Voices", id="voices"):
            gr.Markdown(h.voice_cards())
            with gr.Row():
                sample_voice = gr.Dropdown(voices, value=default_voice, label="Voice")
                sample_model = gr.Dropdown(acoustic, value=default_model, label="Model")
                sample_vocoder = gr.Dropdown(vocoders, value="auto", label="Vocoder")
                sample_btn = gr.Button("Play sample")
            sample_audio = gr.Audio(label="Sample", interactive=False, type="filepath")
            sample_btn.click(h.voice_sample, [sample_voice, sample_model, sample_vocoder, session], sample_audio)

        with gr.Tab("Models", id="models"):
            gr.Markdown(h.model_cards())
    return app


def launch(host: str | None = None, port: int | None = None, **kwargs) -> None:
    """Serve the studio. Binds 127.0.0.1 unless STUDIO_HOST (or `host`) says otherwise."""
    app = build_app()
    # build the WaveNet kernel now (about a second, once per machine), not on the first WaveNet take
    threading.Thread(target=native.load, name="wavenet-kernel", daemon=True).start()
    app.queue(default_concurrency_limit=int(os.environ.get("STUDIO_CONCURRENCY", "2")), max_size=64)
    app.launch(server_name=host or os.environ.get("STUDIO_HOST", "127.0.0.1"),
               server_port=port or int(os.environ.get("STUDIO_PORT", "7860")),
               max_file_size=h.MAX_UPLOAD_BYTES, show_error=False, theme=gr.themes.Soft(), css=CSS, **kwargs)
