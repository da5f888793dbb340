"""Bad input, hostile files and many users at once."""

from __future__ import annotations

import pickle
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import pytest
import torch

from studio.checkpoint import load_checkpoint, save_checkpoint
from studio.errors import CheckpointError, StudioError
from studio.text import TextError
from studio.ui import handlers as h
from tests.conftest import ROOT

BAD_SCRIPTS = {
    "empty": "",
    "whitespace": " \n\t\n ",
    "50k characters": "slt: " + "All work and no play makes a dull voice. " * 1250,
    "2000-word line": "slt: " + "word " * 2000,
    "emoji only": "slt: 😀🎉🔥",
    "CJK only": "slt: 你好，世界",
    "right-to-left only": "slt: مرحبا بالعالم",
    "control characters": "slt: \x00\x01\x02\x1b[31m",
    "unknown voice": "[voice=zz] hello",
    "unknown model": "slt: [model=gpt] hello",
    "too many lines": "\n".join(["slt: hi."] * 300),
}


@pytest.fixture(autouse=True)
def tiny_engine(engine):
    h.set_engine(engine)
    yield
    h.set_engine(None)


@pytest.mark.parametrize("name", list(BAD_SCRIPTS))
def test_bad_scripts_get_one_clear_message(name):
    session = h.new_session()
    session["lines"] = ["something the user made"]
    with pytest.raises(gr.Error) as e:
        list(h.generate(BAD_SCRIPTS[name], "tacotron", "griffinlim", "slt", 1.0, 0.0, session))
    message = str(e.value.message if hasattr(e.value, "message") else e.value)
    assert message and "\n" not in message.strip() and "Traceback" not in message
    assert session["lines"] == ["something the user made"]


def test_mixed_scripts_keep_what_is_speakable(engine):
    take = engine.synthesize("Hello 😀 مرحبا world ☃ 你好!", voice="slt")
    assert take.segments[0].text == "Hello world!"


@pytest.mark.parametrize("name", ["50k characters", "2000-word line", "emoji only", "unknown voice"])
def test_cli_bad_scripts_exit_nonzero_with_one_line(name, tmp_path, tiny_checkpoint_dir):
    import os

    (tmp_path / "s.txt").write_text(BAD_SCRIPTS[name])
    out = subprocess.run([sys.executable, "-m", "studio", "render", str(tmp_path / "s.txt"), "-o",
                          str(tmp_path / "o.wav")], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={**os.environ, "STUDIO_CHECKPOINTS": str(tiny_checkpoint_dir)})
    assert out.returncode != 0
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "o.wav").exists()


class _Payload:
    def __reduce__(self):
        return (Path.write_text, (Path("/tmp/studio_pwned"), "pwned"))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    target = Path("/tmp/studio_pwned")
    target.unlink(missing_ok=True)
    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "model_type": "tacotron", "config": {}, "audio": {}, "state_dict": {},
                "x": _Payload()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil)
    with open(tmp_path / "raw.pt", "wb") as f:
        pickle.dump(_Payload(), f)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "raw.pt")
    assert not target.exists()


def test_checkpoints_are_validated(tmp_path, tiny_checkpoint_dir):
    from studio.engine import LoadedAcoustic

    blob = load_checkpoint(tiny_checkpoint_dir / "tacotron.pt")
    for key, value, match in [("format_version", 99, "newer than this studio"),
                              ("model_type", "gan", "unknown model type"),
                              ("state_dict", {"w": "not a tensor"}, "malformed")]:
        bad = dict(blob, **{key: value})
        torch.save(bad, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(tmp_path / "bad.pt")
    shapes = dict(blob)
    sd = dict(blob["state_dict"])
    sd["embedding.weight"] = torch.zeros(3, 3)
    shapes["state_dict"] = sd
    with pytest.raises(CheckpointError, match="does not match"):
        LoadedAcoustic(shapes, "bad.pt")
    (tmp_path / "truncated.pt").write_bytes((tiny_checkpoint_dir / "tacotron.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "truncated.pt")


def test_uploads_are_size_limited(tmp_path):
    big = tmp_path / "big.srt"
    big.write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\nhi\n\n" * 200_000)
    assert big.stat().st_size > h.MAX_UPLOAD_BYTES
    with pytest.raises(gr.Error, match="larger than"):
        list(h.dub(str(big), "", "slt", "tacotron", "griffinlim", 1.6, h.new_session()))


def test_many_threads_at_once(engine):
    """20 concurrent users, each rendering three lines: no errors, same audio as alone."""
    lines = ["First line.", "A second, somewhat longer line.", "Third line!"]
    alone = [engine.synthesize(s, voice="rms", seed=1).audio for s in lines]
    latencies = []

    def user(i):
        t = time.perf_counter()
        out = [engine.synthesize(s, voice="rms", seed=1).audio for s in lines]
        latencies.append(time.perf_counter() - t)
        return out

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(user, range(20)))
    for res in results:
        for a, b in zip(res, alone):
            assert (a == b).all()
    assert len(latencies) == 20 and statistics.median(latencies) > 0


@pytest.mark.soak
def test_soak_memory_growth(engine):
    """300 syntheses in a row: resident memory grows by less than 50 MB (run with -m soak)."""
    for _ in range(20):
        engine.synthesize("Warm up the caches.", voice="slt")
    before = _rss_mb()
    for i in range(300):
        engine.synthesize(f"Line number {i} of the soak test.", voice=("slt", "rms", "awb")[i % 3], seed=i)
    growth = _rss_mb() - before
    print(f"RSS growth over 300 syntheses: {growth:.1f} MB")
    assert growth < 50


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_errors_do_not_raise_other_types(engine):
    for text in ["", "   ", "\x00", "😀"]:
        with pytest.raises((TextError, StudioError)):
            engine.synthesize(text, voice="slt")
