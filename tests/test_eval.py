import numpy as np
import pytest

from studio.audio import AudioConfig
from studio.eval.health import alignment_health
from studio.eval.metrics import Recognizer, corpus_wer, dtw_path, edit_distance, mcd, wer


def test_wer_basics():
    assert wer("the cat sat", "the cat sat") == 0
    assert wer("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert wer("the cat sat", "a cat sat down") == pytest.approx(2 / 3)
    assert wer("Hello, World!", "hello world") == 0  # case and punctuation do not count
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert corpus_wer([("a b c d", "a b c d"), ("e f", "x")]) == pytest.approx(2 / 6)


def test_dtw_recovers_a_known_warp():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    idx = np.repeat(np.arange(40), 2)  # y is x played at half speed
    path = dtw_path(x, x[idx])
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (39, 79)
    assert all(i == idx[j] for i, j in path)


def test_cepstrum_scale_recovers_known_coefficients():
    from studio.eval.metrics import cepstrum

    n = 80
    w = np.pi * (2 * np.arange(n) + 1) / (2 * n)
    c = [0.5, 0.3, -0.2, 0.1]
    log_env = c[0] + 2 * sum(c[m] * np.cos(m * w) for m in range(1, 4))
    np.testing.assert_allclose(cepstrum(log_env)[1:4], c[1:], atol=1e-9)


def test_mcd_of_identical_audio_is_zero_and_grows_with_distortion(teacher_wav):
    cfg = AudioConfig()
    assert mcd(teacher_wav, teacher_wav, cfg) == pytest.approx(0.0, abs=1e-6)
    noisy = teacher_wav + np.random.default_rng(0).standard_normal(len(teacher_wav)).astype(np.float32) * 0.02
    worse = teacher_wav + np.random.default_rng(0).standard_normal(len(teacher_wav)).astype(np.float32) * 0.1
    assert 0 < mcd(teacher_wav, noisy, cfg) < mcd(teacher_wav, worse, cfg)


def test_recognizer_hears_the_teacher(teacher_wav):
    hyp = Recognizer().transcribe(teacher_wav, 16000)
    assert wer("the quick brown fox jumps over the lazy dog", hyp) <= 0.25, hyp


def test_a_transcript_does_not_depend_on_what_was_heard_before():
    from studio.training.corpus import TEACHERS, synthesize_teacher

    line = synthesize_teacher(TEACHERS["slt"], "Treated natives as subhuman.", AudioConfig())
    noise = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.3
    recognizer = Recognizer()
    first = recognizer.transcribe(line, 16000)
    recognizer.transcribe(noise, 16000)  # once changed the next line's transcript
    assert recognizer.transcribe(line, 16000) == first


def test_health_of_a_clean_diagonal():
    a = np.zeros((30, 12))
    for t in range(30):
        a[t, min(11, t * 12 // 30)] = 1
    h = alignment_health(a, np.r_[np.zeros(29), 1.0])
    assert h["ok"] and h["verdict"] == "healthy" and h["monotonicity"] == 1 and h["coverage"] == 1


@pytest.mark.parametrize("kind", ["skip", "repeat", "runaway", "early"])
def test_health_catches_each_failure(kind):
    peaks = list(np.linspace(0, 19, 40).astype(int))
    stop = np.r_[np.zeros(39), 1.0]
    if kind == "skip":
        peaks = peaks[:10] + [p + 8 for p in peaks[10:] if p + 8 < 20]
    elif kind == "repeat":
        peaks = peaks[:25] + peaks[5:25] + peaks[25:]
    elif kind == "runaway":
        stop = np.zeros(len(peaks))
    elif kind == "early":
        peaks = peaks[:15]
    a = np.zeros((len(peaks), 20))
    a[np.arange(len(peaks)), peaks] = 1
    h = alignment_health(a, stop[: len(peaks)] if kind != "early" else np.r_[np.zeros(14), 1.0])
    assert not h["ok"]
    word = {"skip": "skip", "repeat": "repeat", "runaway": "runaway", "early": "stopped early"}[kind]
    assert word in h["verdict"]


def test_quality_eval_and_report_end_to_end(tmp_path, tiny_checkpoint_dir):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    base = [sys.executable, "-m", "studio", "--checkpoints", str(tiny_checkpoint_dir), "eval"]
    out = subprocess.run(base + ["quality", "--model", "tacotron", "--voices", "slt", "--limit", "2", "--json",
                                 "--reports", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    row = res["voices"]["slt"]
    assert 0 <= row["teacher_wer"] <= 1 and row["wer"] >= 0 and row["mcd_db"] > 0
    assert res["hard"]["sentences"] == 20 and 0 <= res["hard"]["mean_focus_rate"] <= 1
    assert 0 <= res["hard"]["failures_after_retakes"] <= res["hard"]["failures"]
    # a failed take that came out healthy names the retake that mended it
    assert all(d["retakes"] for d in res["hard"]["details"] if d["after_retakes"] == "healthy")
    assert sum(res["hard"]["mended_by"].values()) == res["hard"]["failures"] - res["hard"]["failures_after_retakes"]
    assert (tmp_path / "align_tacotron.png").is_file()
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\nProse stays.\n\n<!-- numbers -->\nold table\n")
    out = subprocess.run(base + ["report", "--reports", str(tmp_path), "--readme", str(readme)], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = (tmp_path / "eval.md").read_text()
    assert "| tacotron | griffinlim | slt | 2 |" in report and "align_tacotron.png" in report
    text = readme.read_text()
    assert text.startswith("# Title\n\nProse stays.\n\n<!-- numbers -->\n") and "old table" not in text
    assert "| tacotron | griffinlim | slt | 2 |" in text


def test_wavenet_speed_reports_the_fold_sweep():
    from studio.eval.speed import wavenet_speed

    r = wavenet_speed(line_seconds=(0.1,), naive_seconds=0.025)
    assert set(r["fold_sweep"]) == {f"{f:g}s fold, 0.1s line" for f in (0.05, 0.1, 0.2, 0.4, 0.8)}
    assert r["fold_seconds"] == 0.4  # the default, chosen by the sweep and a copy-synthesis check (README)
    assert r["folded_rtf"] == r["folded_rtf_by_line"]["0.1s"] == r["fold_sweep"]["0.4s fold, 0.1s line"]
    assert min(r["fold_sweep"].values()) > 0 and r["naive_rtf"] > 0 and r["wavernn_rtf"] > 0
    assert r["folded_python_rtf"] > 0 and r["unfolded_kernel_rtf"] > 0 and "loop" in r["kernel"]
    assert r["receptive_field"] == 1 + 2 * (2**8 - 1)


def test_wer_ratio_interval_is_paired_and_covers_the_point_estimate():
    from studio.eval.metrics import corpus_wer, wer_ratio_interval

    refs = [f"the cat number {w} sat on the mat" for w in "one two three four five six seven eight".split()]
    teacher = [r.replace("cat", "hat") for r in refs]  # one error per sentence
    model = [r.replace("cat", "hat").replace("mat", "map") if i % 2 else r.replace("cat", "hat")
             for i, r in enumerate(refs)]  # 1.5 errors per sentence on average
    point = corpus_wer(list(zip(refs, model))) / corpus_wer(list(zip(refs, teacher)))
    lo, hi = wer_ratio_interval(refs, model, teacher)
    assert lo <= point <= hi and 1.0 <= lo < hi <= 2.0
    assert wer_ratio_interval(refs, teacher, teacher) == (1.0, 1.0)  # paired: identical lists never differ


def test_hard_table_reports_failures_before_and_after_retakes():
    from studio.eval.report import hard_table

    table = hard_table({
        "quality_a": {"model": "a", "hard": {"sentences": 80, "failures": 0, "skips": 0}},  # older report: no field
        "quality_b": {"model": "b", "hard": {"sentences": 80, "failures": 12, "failures_after_retakes": 3}},
        "speed": {"model": "ignored"},
    }).splitlines()
    assert "after retakes" in table[0] and len(table) == 4
    assert table[2].startswith("| a | 80 | 0 | 0 |")  # nothing failed, so nothing is left after retakes
    assert table[3].startswith("| b | 80 | 12 | 3 |")


def test_speed_table_shows_the_kv_cache_speedup_where_measured():
    from studio.eval.report import speed_table

    common = {"rtf": 0.1, "parameters": 2_000_000, "time_to_first_audio_s": 0.3}
    table = speed_table({"acoustic": {
        "tacotron": common,
        "transformer_tts": {**common, "kv_cache": {"decoder_steps": 925, "cached_s": 2.6, "uncached_s": 5.8,
                                                   "speedup": 2.23}},
    }}).splitlines()
    cache_rows = [r for r in table if "cached keys" in r]
    assert len(cache_rows) == 1 and cache_rows[0].startswith("| transformer_tts decoding")
    assert "2.23x" in cache_rows[0] and "925 decoder steps" in cache_rows[0]
