import json
import subprocess
import sys

import numpy as np
import pytest

from studio.errors import ScriptError, StudioError, SubtitleError
from studio.render import dub_subtitles, load_project, read_background, render_script
from studio.script import parse_subtitles
from tests.conftest import ROOT

SCRIPT = """# a three-voice scene
@cast Narrator = slt
@cast Anna = rms speed=1.1
@cast Ben = awb
Narrator: It was late. [pause 0.3s] Very late.
Anna: Who is there?
Ben: [pitch=2] Only me.
[pause 0.5s]
Narrator: The end.
"""

SRT = """1
00:00:00,500 --> 00:00:02,000
RMS: Hello there.

2
00:00:02,500 --> 00:00:03,000
This line is far too long to be spoken inside half a second of time.

3
00:00:04,000 --> 00:00:06,000
Goodbye.
"""


def test_render_three_voice_script(engine):
    res = render_script(engine, SCRIPT)
    assert [line.voice for line in res.lines] == ["slt", "rms", "awb", "slt"]
    assert len(res.cues()) == 4
    assert res.audio.ndim == 1 and len(res.audio) / res.sample_rate > 0.5 + 0.3
    cues = parse_subtitles(res.srt())
    assert len(cues) == 4
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))
    vtt = parse_subtitles(res.vtt())
    assert [c.text for c in vtt] == [c.text for c in cues]
    assert res.lines[1].takes[0].settings["speed"] == 1.1
    assert res.lines[2].takes[0].settings["pitch"] == 2


def test_render_errors_name_the_line(engine):
    with pytest.raises(ScriptError, match="line 2"):
        render_script(engine, "slt: fine\nNobody: who am I?\n")
    with pytest.raises(ScriptError):
        render_script(engine, "   \n\n")
    with pytest.raises(StudioError, match="line 1"):
        render_script(engine, "slt: 😀😀😀\n")


def test_what_cannot_be_read_is_named_in_the_warnings(engine):
    res = render_script(engine, "slt: Hello 🎬 there.\nrms: Plain words.\nawb: Tokyo 東京 it is.\n")
    assert res.warnings == ["line 1: left out what the English voices cannot read: 🎬",
                            "line 3: left out what the English voices cannot read: 東京"]
    assert res.lines[0].takes[0].metadata()["warning"].endswith("🎬")
    srt = "1\n00:00:00,000 --> 00:00:02,000\nBonjour 😀 friend.\n"
    assert dub_subtitles(engine, srt).warnings == ["cue 1: left out what the English voices cannot read: 😀"]


def test_dub_mixed_over_a_background(engine, tmp_path):
    import soundfile as sf

    res = dub_subtitles(engine, SRT, max_rate=1.6)
    bed = 0.2 * np.sin(2 * np.pi * 220 * np.arange(44100 * 8) / 44100).astype(np.float32)
    sf.write(tmp_path / "bed.flac", np.stack([bed, bed], axis=1), 44100)
    background, sr = read_background(tmp_path / "bed.flac")
    mix = res.mix(background, sr, duck_db=18.0)
    assert sr == 44100 and mix.shape == (44100 * 8, 2)
    gap = mix[int(3.2 * sr) : int(3.3 * sr), 0]  # between cue 2's take and cue 3: the bed alone, full level
    assert np.isclose(np.sqrt(np.mean(gap**2)), 0.2 / np.sqrt(2), rtol=0.05)
    speech = mix[int(res.lines[0].start * sr) : int(res.lines[0].end * sr), 0] - bed[int(res.lines[0].start * sr) :
                                                                                    int(res.lines[0].end * sr)]
    assert np.max(np.abs(speech)) > 0.05  # the voice is in the mix (the bed is ducked, not replaced)
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really audio")
    with pytest.raises(StudioError, match="cannot read the background audio bad.wav"):
        read_background(tmp_path / "bad.wav")
    with pytest.raises(StudioError, match="0 to 60 dB"):
        res.mix(background, sr, duck_db=-3)


def test_dub_gives_each_labelled_speaker_a_voice(engine):
    srt = ("1\n00:00:01,000 --> 00:00:02,000\nJOHN: Where were you?\n\n"
           "2\n00:00:02,500 --> 00:00:03,500\nMARY: Out.\n\n"
           "3\n00:00:04,000 --> 00:00:05,000\nNo label here.\n")
    res = dub_subtitles(engine, srt, voice="slt")
    voices = [line.voice for line in res.lines]
    assert voices[2] == "slt" and len(set(voices)) == 3  # John and Mary apart, and apart from the default
    assert res.settings["cast"] == {"john": voices[0], "mary": voices[1]}
    stems = res.stems()
    assert sorted(stems) == sorted(set(voices)) and all(len(x) == len(res.audio) for x in stems.values())
    np.testing.assert_allclose(sum(stems.values()), res.audio, atol=1e-6)
    res = dub_subtitles(engine, srt, voice="slt", cast={"john": "SLT", "Mary": "slt"})
    assert [line.voice for line in res.lines] == ["slt", "slt", "slt"]
    with pytest.raises(StudioError, match="JOHN has unknown voice 'zzz'"):
        dub_subtitles(engine, srt, cast={"JOHN": "zzz"})


def test_dub_without_cues_is_refused(engine):
    for text in ["\ufeff", "WEBVTT\n", "   \n"]:
        with pytest.raises(SubtitleError, match="no cues"):
            dub_subtitles(engine, text)


def test_dub_keeps_cues_in_their_slots(engine):
    res = dub_subtitles(engine, SRT, max_rate=1.6)
    assert [line.voice for line in res.lines] == ["rms", "slt", "slt"]
    for line in res.lines:
        if line.fits:
            assert line.slot[0] - 1e-6 <= line.start and line.end <= line.slot[1] + 1e-3
        assert 1.0 <= line.rate <= 1.6
    assert len(res.audio) >= int(6.0 * res.sample_rate)
    project = json.loads(json.dumps(res.project()))
    assert load_project(project)["kind"] == "dub"


def test_project_round_trip_and_future_version(engine):
    res = render_script(engine, SCRIPT)
    data = json.loads(json.dumps(res.project()))
    assert load_project(data)["source"] == SCRIPT
    data["version"] = 99
    with pytest.raises(StudioError, match="newer studio"):
        load_project(data)
    with pytest.raises(StudioError):
        load_project({"hello": 1})


def test_broken_srt_is_refused_with_its_line(engine):
    with pytest.raises(SubtitleError, match="line 2"):
        dub_subtitles(engine, "1\n00:00:01,000 --> banana\nHello\n")
    with pytest.raises(SubtitleError):
        dub_subtitles(engine, "1\n00:00:05,000 --> 00:00:01,000\nBackwards\n")


def run_cli(*args, env_dir=None):
    import os

    env = {**os.environ, "STUDIO_CHECKPOINTS": str(env_dir)} if env_dir else None
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env=env)


def test_cli_speak_render_dub(tmp_path, tiny_checkpoint_dir):
    out = run_cli("speak", "Hello from the command line.", "--voice", "slt", "-o", str(tmp_path / "a.wav"), "--json",
                  env_dir=tiny_checkpoint_dir)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["timings"]["rtf"] > 0 and (tmp_path / "a.wav").exists()
    assert {"audio_s", "compute_s", "rtf"} <= set(data["timings"])

    (tmp_path / "s.txt").write_text(SCRIPT)
    out = run_cli("render", str(tmp_path / "s.txt"), "-o", str(tmp_path / "t.flac"), "--srt", str(tmp_path / "t.srt"),
                  "--vtt", str(tmp_path / "t.vtt"), "--project", str(tmp_path / "p.json"), "--json",
                  env_dir=tiny_checkpoint_dir)
    assert out.returncode == 0, out.stderr
    assert len(parse_subtitles((tmp_path / "t.srt").read_text())) == 4
    assert (tmp_path / "t.vtt").read_text().startswith("WEBVTT")
    assert json.loads((tmp_path / "p.json").read_text())["format"] == "studio-project"

    (tmp_path / "s.srt").write_text(SRT)
    out = run_cli("dub", str(tmp_path / "s.srt"), "-o", str(tmp_path / "d.wav"), "--json", env_dir=tiny_checkpoint_dir)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["lines"]) == 3

    import soundfile as sf

    sf.write(tmp_path / "bed.wav", np.zeros((22050 * 9, 2), np.float32) + 0.01, 22050)
    out = run_cli("dub", str(tmp_path / "s.srt"), "-o", str(tmp_path / "m.wav"),
                  "--background", str(tmp_path / "bed.wav"), "--voice-only", str(tmp_path / "v.wav"),
                  env_dir=tiny_checkpoint_dir)
    assert out.returncode == 0, out.stderr
    assert sf.info(tmp_path / "m.wav").channels == 2 and sf.info(tmp_path / "m.wav").samplerate == 22050
    assert sf.info(tmp_path / "v.wav").channels == 1
    out = run_cli("dub", str(tmp_path / "s.srt"), "-o", str(tmp_path / "m2.wav"),
                  "--background", str(tmp_path / "s.srt"), env_dir=tiny_checkpoint_dir)
    assert out.returncode == 2 and "cannot read the background audio" in out.stderr
    assert not (tmp_path / "m2.wav").exists()

    out = run_cli("voices", "--json", env_dir=tiny_checkpoint_dir)
    assert [v["id"] for v in json.loads(out.stdout)["voices"]] == ["slt", "rms", "awb"]
    out = run_cli("models", "--json", env_dir=tiny_checkpoint_dir)
    assert {m["name"] for m in json.loads(out.stdout)["models"]} == {"tacotron", "griffinlim"}


@pytest.mark.parametrize("args,message", [
    (["speak", "Hi", "--voice", "nobody", "-o", "x.wav"], "unknown voice"),
    (["speak", "   ", "--voice", "slt", "-o", "x.wav"], "empty"),
    (["render", "no/such/file.txt", "-o", "x.wav"], "file not found"),
    (["speak", "Hi", "--voice", "slt", "--model", "nope", "-o", "x.wav"], "unknown model"),
    (["speak", "Hi", "--voice", "slt", "-o", "x.xyz"], "cannot write '.xyz' audio files"),
    (["render", "no/such/file.txt", "-o", "x"], "file not found"),
])
def test_cli_errors_are_one_line(args, message, tiny_checkpoint_dir, tmp_path):
    args = [a if a != "x.wav" else str(tmp_path / "x.wav") for a in args]
    out = run_cli(*args, env_dir=tiny_checkpoint_dir)
    assert out.returncode != 0
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_cli_broken_srt(tmp_path, tiny_checkpoint_dir):
    (tmp_path / "bad.srt").write_text("1\n00:00:01,000 --> xx\nHello\n")
    out = run_cli("dub", str(tmp_path / "bad.srt"), "-o", str(tmp_path / "d.wav"), env_dir=tiny_checkpoint_dir)
    assert out.returncode != 0 and "line 2" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "d.wav").exists()


def test_script_pronunciations_reach_the_engine(engine):
    res = render_script(engine, "@say gif = /dʒˈɪf/\n@say SQL = sequel\nrms: A gif of SQL.")
    seg = res.lines[0].takes[0].segments[0]
    assert seg.text == "A gif of sequel."
    assert "".join(seg.tokens).find("dʒˈɪf") >= 0
    with pytest.raises(ScriptError, match="pronunciation of 'gif' has symbols tacotron does not know: Q"):
        render_script(engine, "@say gif = /Qif/\nrms: A gif.")


def test_fill_least_used_spreads_speakers_over_the_voices():
    from studio.render import fill_least_used

    voices = ["slt", "rms", "awb"]
    got = fill_least_used(["ann", "bob", "cy", "di"], {"bob": "slt"}, voices, also_used=("rms",))
    # slt (bob) and rms (the default voice) are taken once each: awb first, then the order of `voices`
    assert got == {"ann": "awb", "bob": "slt", "cy": "slt", "di": "rms"}
    assert fill_least_used(["ann"], {}, []) == {"ann": ""}  # no voices: nothing to give
