"""Alignment health: read an attention matrix and say whether decoding went wrong.

An attention TTS model fails in three recognisable ways: it *skips* (the attention peak jumps
ahead over symbols, which are then never spoken), it *repeats* (the peak moves back and reads
symbols again), or it *runs away* (never stops: the stop token never fires, so the decoder
babbles until the length limit). Each shows in the alignment, so the engine can retake.
"""

from __future__ import annotations

import numpy as np

# A healthy peak moves less than this many symbols per decoder step (r=4 frames = 50 ms covers
# well under one phoneme); larger jumps are skips.
SKIP_JUMP = 4
REPEAT_BACK = 3  # the peak moving back more than this many symbols is a repeat
MIN_FOCUS = 0.25  # mean max attention weight below this is "diffuse" attention
MIN_COVERAGE = 0.85  # the peak must get this close (as a fraction) to the end of the text


def alignment_health(alignment: np.ndarray, stop: np.ndarray | None = None, stop_threshold: float = 0.5,
                     hit_limit: bool | None = None) -> dict:
    """Measure one utterance's alignment.

    Shapes: alignment (T_dec, T_text); stop (T_dec,) stop probabilities.
    Returns focus_rate (mean over steps of the max weight), monotonicity (fraction of steps
    whose peak does not move back), coverage (furthest peak / last symbol), the skips and
    repeats as (step, from_symbol, to_symbol), runaway, ok and a one-line verdict.
    """
    a = np.asarray(alignment, dtype=np.float32)
    T_dec, T_text = a.shape
    if T_dec == 0 or T_text == 0:
        return {"focus_rate": 0.0, "monotonicity": 0.0, "coverage": 0.0, "skips": [], "repeats": [],
                "runaway": True, "ok": False, "verdict": "empty alignment"}
    peaks = a.argmax(axis=1)
    focus = float(a.max(axis=1).mean())
    # Reading starts at the first symbol: a first peak far into the text skipped the beginning.
    path = np.concatenate([[0], peaks])
    moves = np.diff(path)
    monotonicity = float((moves >= -1).mean()) if len(moves) else 1.0
    skips = [(int(t), int(path[t]), int(path[t + 1])) for t in np.nonzero(moves > SKIP_JUMP)[0]]
    running_max = np.maximum.accumulate(peaks)
    back = running_max - peaks
    repeats = []
    for t in np.nonzero(back > REPEAT_BACK)[0]:
        if not repeats or repeats[-1][0] != t - 1:  # count each backward excursion once
            repeats.append((int(t), int(running_max[t]), int(peaks[t])))
        else:
            repeats[-1] = (repeats[-1][0], repeats[-1][1], int(peaks[t]))
    coverage = float(peaks.max() / max(1, T_text - 1))
    stopped = bool(stop is not None and len(stop) and float(np.max(stop)) > stop_threshold)
    runaway = bool(hit_limit) if hit_limit is not None else (stop is not None and not stopped)
    problems = []
    if skips:
        problems.append(f"{len(skips)} skip{'s' * (len(skips) > 1)}")
    if repeats:
        problems.append(f"{len(repeats)} repeat{'s' * (len(repeats) > 1)}")
    if runaway:
        problems.append("runaway decoding (no stop)")
    if coverage < MIN_COVERAGE:
        problems.append(f"stopped early ({coverage:.0%} of the text)")
    if focus < MIN_FOCUS:
        problems.append(f"diffuse attention (focus {focus:.2f})")
    return {
        "focus_rate": round(focus, 4),
        "monotonicity": round(monotonicity, 4),
        "coverage": round(coverage, 4),
        "skips": skips,
        "repeats": repeats,
        "runaway": runaway,
        "ok": not problems,
        "verdict": "healthy" if not problems else ", ".join(problems),
    }
