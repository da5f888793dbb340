"""The studio's handlers called directly, the served app through gradio_client, and a real
headless browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

from studio.ui import handlers as h
from tests.conftest import ROOT

SCRIPT = "@cast Host = slt\nHost: Good evening.\nrms: [speed=1.2] Thank you.\n[pause 0.3s]\nawb: Goodbye!\n"


@pytest.fixture(autouse=True)
def tiny_engine(engine):
    h.set_engine(engine)
    yield
    h.set_engine(None)


def run_generate(script=SCRIPT, session=None):
    session = session or h.new_session()
    updates = list(h.generate(script, "tacotron", "griffinlim", "slt", 1.0, 0.0, session))
    return updates, session


def test_generate_streams_line_by_line():
    updates, session = run_generate()
    assert len(updates) == 1 + 3 + 1  # start, one per spoken line, final
    table, line_audio, track, status, state = updates[-1]
    assert [row[0] for row in table] == [2, 3, 5] and [row[2] for row in table] == ["slt", "rms", "awb"]
    assert len(table[0]) == len(h.LINE_HEADERS) and {row[-1] for row in table} == {"griffinlim"}  # what ran
    wav, sr = sf.read(track)
    assert sr == 16000 and len(wav) > 0
    assert "Done: 3 lines" in status
    assert state["result"] is not None and len(state["lines"]) == 3
    first, _ = sf.read(updates[1][1])  # the first line is playable before the rest are rendered
    assert len(first) > 0 and updates[1][1] != updates[2][1]  # every take gets a file of its own
    assert h.first_line(state) == 2  # script line numbers: line 1 is the cast


def test_errors_are_messages_and_keep_the_session():
    _, session = run_generate()
    before = list(session["lines"])
    for bad in ["", "   ", "Nobody: hello", "slt: [tempo=3] hi", "slt: " + "word " * 600]:
        with pytest.raises(gr.Error):
            run_generate(bad, session)
    assert session["lines"] == before  # nothing the user made is lost


def test_regenerate_inspect_export_and_reopen(tmp_path):
    _, session = run_generate()
    old = session["lines"][1]
    table, line_audio, track, status, session = h.regenerate(3, session)
    assert session["lines"][1] is not old and session["lines"][1].seed == old.seed + 1
    assert "Line 3 regenerated" in status
    mel, align, stop, verdict = h.inspect(3, 0, 0, session)
    assert all(Path(p).is_file() and Path(p).stat().st_size > 1000 for p in (mel, align, stop))
    assert "“" in verdict
    files = h.export(session)
    suffixes = sorted(Path(f).suffix for f in files if "_stem_" not in Path(f).name)
    assert suffixes == [".flac", ".json", ".mp3", ".srt", ".vtt", ".wav"]
    stems = sorted(Path(f).name for f in files if "_stem_" in Path(f).name)
    assert stems == ["track_stem_awb.wav", "track_stem_rms.wav", "track_stem_slt.wav"]  # one per voice of the script
    folder = Path(files[0]).parent
    np.testing.assert_allclose(sum(sf.read(folder / name)[0] for name in stems), sf.read(files[0])[0],
                               atol=1e-3)  # they add up to the track (16-bit files)
    sf.write(tmp_path / "bed.ogg", np.full((22050 * 3, 2), 0.05, np.float32), 22050)
    mixed = h.export(session, str(tmp_path / "bed.ogg"), 9)
    assert Path(mixed[0]).name == "track_mix.wav" and sf.info(mixed[0]).samplerate == 22050
    assert len(mixed) == len(files) + 1
    project = next(f for f in files if f.endswith(".json"))
    out = h.open_project(project, h.new_session())
    assert out[0] == SCRIPT and out[1] == "tacotron" and len(out[6]) == 3
    reopened = out[-1]
    assert reopened["line_seeds"][3] == old.seed + 1
    *_, final = h.generate(out[0], out[1], out[2], out[3], out[4], out[5], reopened)
    np.testing.assert_array_equal(sf.read(final[2])[0], sf.read(track)[0])  # the same track as before saving
    with pytest.raises(gr.Error, match="Pick a line|no line 99"):
        h.inspect(99, 0, 0, session)
    with pytest.raises(gr.Error, match="Generate"):
        h.export(h.new_session())


def test_open_project_refuses_bad_files(tmp_path):
    (tmp_path / "future.json").write_text(json.dumps({"format": "studio-project", "version": 42, "kind": "script",
                                                      "source": "x"}))
    with pytest.raises(gr.Error, match="newer studio"):
        h.open_project(str(tmp_path / "future.json"), h.new_session())
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(gr.Error, match="not valid JSON"):
        h.open_project(str(tmp_path / "junk.json"), h.new_session())


def test_health_verdict_in_words():
    take = h.get_engine().synthesize("A short line.", voice="slt", retake=False)
    text = h.describe_health(take)
    assert text.startswith(("✓", "⚠")) and "A short line." in text


def test_cast_detection_and_apply():
    rows = h.detect_cast("@cast Host = slt\nHost: hi\nGuest: hello\nRMS: yo\nBob: hey\n")
    assert [v.id for v in h.get_engine().voices()] == ["slt", "rms", "awb"]  # the test engine's
    # Guest and Bob are suggested the least used voices: awb (unused), then slt (first of the rest)
    assert rows == [["Host", "slt"], ["Guest", "awb"], ["RMS", "rms"], ["Bob", "slt"]]
    assert h.detect_cast("ANNA (V.O.): hi\n") == [["ANNA", "slt"]]  # a screenplay extension is not the name
    new = h.apply_cast("@cast Host = slt\nHost: hi\nGuest: hello\n", [["Host", "awb"], ["Guest", "rms"]])
    assert "@cast Host = awb" in new and "@cast Guest = rms" in new
    with pytest.raises(gr.Error, match="unknown voice"):
        h.apply_cast("Guest: hi", [["Guest", "zzz"]])


def test_compare_two_configurations():
    out = h.compare("Compare this line.", "tacotron", "griffinlim", "slt", "tacotron", "griffinlim", "rms",
                    h.new_session())
    assert len(out) == 8 and sf.read(out[0])[0].size > 0 and sf.read(out[4])[0].size > 0
    assert "RTF" in out[3] and "voice rms" in out[7]


def test_dub_tab_marks_cues_that_do_not_fit(long_engine):
    h.set_engine(long_engine)  # takes of known, long length
    srt = (ROOT / "assets/subtitles/sample.srt").read_text()
    srt += "\n5\n00:00:11,000 --> 00:00:11,200\nThis is far too long for a fifth of a second.\n"
    updates = list(h.dub(None, srt, "slt", "tacotron", "griffinlim", 1.6, h.new_session()))
    table, audio, files, status, session = updates[-1]
    assert len(table) == 5 and sf.read(audio)[0].size > 0
    assert {Path(f).suffix for f in files} >= {".wav", ".srt", ".vtt"}
    assert "do not fit" in status and table[-1][7].startswith("✗")
    with pytest.raises(gr.Error, match="line 2"):
        list(h.dub(None, "1\n00:00:01,000 --> oops\nHi\n", "slt", "tacotron", "griffinlim", 1.6, h.new_session()))


def test_dub_tab_cast_table():
    srt = "1\n00:00:01,000 --> 00:00:02,000\nJOHN: Hi.\n\n2\n00:00:02,500 --> 00:00:03,500\nMARY: Hello.\n"
    rows = h.detect_dub_cast(None, srt, "slt", "tacotron")
    assert [r[0] for r in rows] == ["JOHN", "MARY"] and len({r[1] for r in rows} | {"slt"}) == 3
    *_, (table, _, _, status, _) = h.dub(None, srt, "slt", "tacotron", "griffinlim", 1.6, h.new_session(), None, 12,
                                        [["JOHN", "awb"], ["MARY", "Sally"], ["", ""]])
    assert [r[2] for r in table] == ["awb", "slt"] and "JOHN → awb" in status
    with pytest.raises(gr.Error, match="unknown voice"):
        list(h.dub(None, srt, "slt", "tacotron", "griffinlim", 1.6, h.new_session(), None, 12, [["JOHN", "zzz"]]))


def test_dub_one_cue_again(long_engine):
    h.set_engine(long_engine)
    srt = (ROOT / "assets/subtitles/sample.srt").read_text()
    *_, session = list(h.dub(None, srt, "slt", "tacotron", "griffinlim", 1.6, h.new_session()))[-1]
    before = session["dub"].lines
    table, audio, files, status, session = h.redub_cue(2, session)
    after = session["dub"].lines
    assert after[1].seed == before[1].seed + 1 and after[0] is before[0] and "Cue 2 dubbed again" in status
    assert len(table) == len(before) and sf.read(audio)[0].size > 0
    with pytest.raises(gr.Error, match="no cue 99"):
        h.redub_cue(99, session)
    with pytest.raises(gr.Error, match="Nothing dubbed yet"):
        h.redub_cue(1, h.new_session())


def test_dub_tab_mixes_over_a_background(long_engine, tmp_path):
    h.set_engine(long_engine)
    srt = (ROOT / "assets/subtitles/sample.srt").read_text()
    sf.write(tmp_path / "bed.wav", np.full((32000 * 2, 2), 0.05, np.float32), 32000)
    table, audio, files, status, _ = list(h.dub(None, srt, "slt", "tacotron", "griffinlim", 1.6, h.new_session(),
                                               str(tmp_path / "bed.wav"), 12))[-1]
    mix, sr = sf.read(audio)
    assert sr == 32000 and mix.ndim == 2 and "ducked 12 dB" in status
    assert Path(files[0]).name == "dub_mix.wav" and any(Path(f).name == "dub.wav" for f in files)
    (tmp_path / "bad.wav").write_text("not audio")
    with pytest.raises(gr.Error, match="cannot read the background audio"):
        list(h.dub(None, srt, "slt", "tacotron", "griffinlim", 1.6, h.new_session(), str(tmp_path / "bad.wav"), 12))


def test_head_controls_follow_the_model(tmp_path):
    from studio.audio import AudioConfig
    from studio.checkpoint import save_checkpoint
    from studio.engine import Engine
    from studio.models.transformer_tts import TransformerTTS
    from studio.text import Vocab
    from tests.conftest import SPEAKERS
    from tests.test_transformer_tts import tiny

    hidden = h.head_controls("tacotron")
    assert hidden[0]["visible"] is False
    cfg = tiny(decoder_layers=3, n_heads=2)
    save_checkpoint(tmp_path / "transformer_tts.pt", TransformerTTS(cfg), "transformer_tts", cfg, AudioConfig(),
                    Vocab.phonemes().to_list(), SPEAKERS)
    h.set_engine(Engine(tmp_path))
    layer, head = h.head_controls("transformer_tts")
    assert layer["visible"] and layer["maximum"] == 2 and layer["value"] == 2 and head["maximum"] == 1
    take = h.get_engine().synthesize("Hello there.", voice="slt", model="transformer_tts")
    mel, align, stop, verdict = h.inspect_take(take, 1, 1, tmp_path, "t")
    assert "layer 2, head 0" in verdict and Path(align).is_file()

    # the sliders follow the inspected line's own model (a line can override the dropdown's)
    from studio.render import RenderedLine

    session = h.new_session()
    session["lines"] = [RenderedLine(number=3, text="Hello there.", voice="slt", start=0.0, end=1.0, takes=[take])]
    layer, head = h.line_head_controls(3.0, session)
    assert layer["visible"] and layer["value"] == 2 and head["value"] == 0
    assert h.line_head_controls(4, session) == (gr.skip(), gr.skip())  # no such line: leave the sliders


def test_voice_and_model_cards():
    assert "`rms`" in h.voice_cards()
    assert "tacotron" in h.model_cards() and "griffinlim" in h.model_cards()
    assert "### auto (vocoder)" in h.model_cards() and "awb: griffinlim" in h.model_cards()  # no vocoder trained
    assert h.vocoder_choices()[0] == "auto"
    assert Path(h.voice_sample("awb", "tacotron", "griffinlim", h.new_session())).is_file()
    assert Path(h.voice_sample("awb", "tacotron", "auto", h.new_session())).is_file()


def test_model_card_of_a_wavenet_shows_its_architecture_and_copy_synthesis(tmp_path):
    from studio.audio import AudioConfig
    from studio.checkpoint import save_checkpoint
    from studio.engine import Engine
    from studio.vocoders.wavenet import WaveNet, WaveNetConfig
    from tests.conftest import SPEAKERS

    cfg = WaveNetConfig(layers=2, stacks=1, residual_channels=4, gate_channels=8, skip_channels=4, n_speakers=3,
                        lpc_order=16)
    copy = {"lines": 40, "pesq": 2.5, "griffinlim_pesq": 2.39, "stoi": 0.964, "griffinlim_stoi": 0.961}
    save_checkpoint(tmp_path / "wavenet.pt", WaveNet(cfg), "wavenet", cfg, AudioConfig(), None, SPEAKERS,
                    metrics={"steps": 12, "copy_synthesis": copy})
    before = h.get_engine()
    h.set_engine(Engine(tmp_path))
    try:
        card = h.model_cards()
    finally:
        h.set_engine(before)
    assert "### wavenet (wavenet, vocoder)" in card and "1 x 2 dilated causal layers" in card
    assert "order-16 predictor" in card and "PESQ 2.5 (Griffin-Lim 2.39), STOI 0.964 (Griffin-Lim 0.961)" in card


# ---------------------------------------------------------------------------------------------
# the served app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_checkpoint_dir, tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "STUDIO_CHECKPOINTS": str(tiny_checkpoint_dir), "STUDIO_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False"}
    log = tmp_path_factory.mktemp("app") / "app.log"
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("the studio did not start: " + log.read_text()[-2000:])
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_binds_loopback_only(served):
    port = int(served.rsplit(":", 1)[1].strip("/"))
    out = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout if _has("ss") else ""
    if out:
        listening = [line for line in out.splitlines() if f":{port} " in line]
        assert listening and all("127.0.0.1" in line for line in listening), listening


def _has(cmd: str) -> bool:
    from shutil import which

    return which(cmd) is not None


def test_serves_no_file_outside_its_outputs(served):
    for path in ["gradio_api/file=/etc/passwd", "file=/etc/passwd", "gradio_api/file=../../../../etc/passwd",
                 "gradio_api/file=" + str(ROOT / "studio" / "engine.py")]:
        try:
            with urllib.request.urlopen(served + path, timeout=10) as r:
                body = r.read()
                assert b"root:" not in body and b"class Engine" not in body, path
        except urllib.error.HTTPError as e:
            assert e.code in (403, 404, 400), (path, e.code)


def test_gradio_client_generate(served):
    from gradio_client import Client

    client = Client(served, verbose=False)
    job = client.submit("slt: Hello from the client.", "tacotron", "griffinlim", "slt", 1.0, 0.0,
                        api_name="/generate")
    result = job.result(timeout=180)
    table, line_audio, track, status = result[:4]
    assert "Done: 1 lines" in status
    assert track and Path(track).is_file()


def test_browser_generate_and_inspect(served, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = ROOT / "reports" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(served, wait_until="domcontentloaded")
        page.wait_for_selector("#generate", timeout=60000)
        page.locator("#script textarea").fill("slt: Hello from the browser test.\nrms: A second line.")
        page.locator("#generate").click()
        page.wait_for_function(
            "() => document.querySelector('#status') && document.querySelector('#status').innerText.includes('Done')",
            timeout=180000)
        page.wait_for_selector("#track_audio a[download]", state="attached", timeout=60000)
        page.wait_for_selector("#align_img img", timeout=120000)
        page.wait_for_selector("#mel_img img", timeout=120000)
        takes = page.locator("#takes").inner_text()
        assert "Hello from the browser test." in takes and "A second line." in takes
        href = page.locator("#track_audio a[download]").first.get_attribute("href")
        body = page.request.get(href).body()  # the player's file: a real, playable WAV
        assert body[:4] == b"RIFF" and body[8:12] == b"WAVE" and len(body) > 1000
        page.screenshot(path=str(shots / "studio.png"), full_page=True)
        browser.close()
    assert (shots / "studio.png").stat().st_size > 20000


def test_twenty_concurrent_clients(served):
    from studio.eval.load import run_load

    res = run_load(served, clients=20, lines=3)
    assert res["errors"] == 0, res["error_samples"]
    # a dropped connection is retried once and counted; more than a few would be a server problem
    assert res["retried"] <= 2, res["retry_samples"]
    assert res["p50_s"] <= res["p90_s"] <= res["p99_s"]


def test_load_run_retries_a_dropped_connection_once(monkeypatch):
    import gradio_client
    import httpx

    from studio.eval.load import run_load

    calls = {"n": 0}

    class FlakyClient:  # first request's connection drops, the rest answer like the studio
        def __init__(self, url, verbose=False):
            pass

        def submit(self, *args, api_name=None):
            calls["n"] += 1
            n = calls["n"]

            class Job:
                def result(self, timeout=None):
                    if n == 1:
                        raise httpx.RemoteProtocolError("peer closed connection")
                    if n == 2 and args[0].startswith("slt"):
                        return [None, None, None, "Done: 3 lines"]
                    return [None, None, None, "Error: nothing"]
            return Job()

    monkeypatch.setattr(gradio_client, "Client", FlakyClient)
    res = run_load("http://127.0.0.1:1/", clients=1, lines=3)
    assert (res["errors"], res["retried"]) == (0, 1) and "RemoteProtocolError" in res["retry_samples"][0]
    res = run_load("http://127.0.0.1:1/", clients=1, lines=3)  # a studio error is never retried
    assert (res["errors"], res["retried"]) == (1, 0) and "unexpected result" in res["error_samples"][0]


def test_take_files_do_not_pile_up():
    session = h.new_session()
    first = Path(h._to_audio(np.zeros(1600), 16000, session, "line2"))
    other = Path(h._to_audio(np.zeros(1600), 16000, session, "line21"))
    old = time.time() - h.TAKE_FILE_TTL_S - 1
    os.utime(first, (old, old))
    os.utime(other, (old, old))
    second = Path(h._to_audio(np.zeros(1600), 16000, session, "line2"))
    assert second.is_file() and not first.exists()  # the stale take of the same slot is gone
    assert other.exists()  # another line's take is not touched
