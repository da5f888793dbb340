"""The measures behind every quality number: WER, mel-cepstral distortion with DTW, PESQ, STOI.

pocketsphinx is a weak recogniser for synthetic speech, so its WER is only ever read beside
the teacher voice's own WER on the same sentences.
"""

from __future__ import annotations

import re
import threading

import numpy as np

from studio.audio import AudioConfig, dither, mel_spectrogram, resample

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lowercase words for scoring; the reference goes through the same normaliser as the model."""
    return _WORD.findall(text.lower().replace("-", " "))


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(reference: str | list[str], hypothesis: str | list[str]) -> float:
    ref = words(reference) if isinstance(reference, str) else reference
    hyp = words(hypothesis) if isinstance(hypothesis, str) else hypothesis
    if not ref:
        return float(bool(hyp))
    return edit_distance(ref, hyp) / len(ref)


def corpus_wer(pairs: list[tuple[str, str]]) -> float:
    """Total edits over total reference words (not a mean of per-sentence WERs)."""
    errors = sum(edit_distance(words(r), words(h)) for r, h in pairs)
    return errors / max(1, sum(len(words(r)) for r, _ in pairs))


def wer_ratio_interval(refs: list[str], hyps: list[str], teacher_hyps: list[str], n: int = 2000,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Paired bootstrap over sentences of corpus WER(model) / corpus WER(teacher).

    The same resampled sentences score both, so the interval shows how much of a ratio is the
    luck of a small sentence list (15 sentences of ~7 words move a ratio by tenths)."""
    err_m = np.array([edit_distance(words(r), words(h)) for r, h in zip(refs, hyps)], dtype=float)
    err_t = np.array([edit_distance(words(r), words(h)) for r, h in zip(refs, teacher_hyps)], dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(refs), size=(n, len(refs)))  # (n, sentences)
    ratios = err_m[idx].sum(1) / np.maximum(err_t[idx].sum(1), 1.0)
    lo, hi = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return round(float(lo), 3), round(float(hi), 3)


class Recognizer:
    """pocketsphinx's bundled en-US model, one decoder per instance (not thread-safe: locked)."""

    def __init__(self):
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=16000, logfn="/dev/null")
        self._lock = threading.Lock()

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        x = resample(np.asarray(wav, dtype=np.float32), sample_rate, 16000)
        x = dither(x, -60.0)  # digital silence breaks pocketsphinx's feature normalisation
        pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes()
        with self._lock:
            d = self._decoder
            # Each utterance from a clean slate: the feature front-end adapts (cepstral mean,
            # noise estimate) across utterances, so a line's transcript depended on what was
            # heard before it, and a teacher's WER on the model evaluated beside it.
            d.reinit_feat()
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            hyp = d.hyp()
        return hyp.hypstr if hyp else ""


def mel_cepstrum(wav: np.ndarray, cfg: AudioConfig, n_coeffs: int = 24) -> np.ndarray:
    """Mel-cepstral coefficients c1..c_n (c0, the energy, is left out as is usual for MCD).

    The cepstrum of the natural-log mel amplitude envelope: if ln|S(w)| = c0 + 2 sum c_m cos(m w)
    is sampled at the N band centres, c_m = DCT-II_ortho(ln|S|)_m / sqrt(2N). This puts the
    coefficients on the scale the MCD formula assumes (SPTK's mcep works on the same log
    amplitude, with an all-pass warp where we use the mel filter bank); (T_mel, n_coeffs).
    """
    log_mel = mel_spectrogram(wav, cfg).numpy()  # (T_mel, n_mels), natural-log amplitude
    return cepstrum(log_mel)[:, 1 : n_coeffs + 1]


def cepstrum(log_envelope: np.ndarray) -> np.ndarray:
    """Cepstral coefficients of log envelopes sampled at N band centres. Shapes: (..., N) -> (..., N)"""
    import scipy.fft

    n = log_envelope.shape[-1]
    return scipy.fft.dct(log_envelope, type=2, norm="ortho", axis=-1) / np.sqrt(2.0 * n)


def dtw_path(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Minimal-cost monotonic alignment of two feature sequences (Euclidean cost).

    Shapes: x (N, D), y (M, D) -> path (K, 2) of index pairs from (0, 0) to (N-1, M-1).
    """
    import librosa

    cost = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))  # (N, M)
    _, wp = librosa.sequence.dtw(C=cost, backtrack=True)
    return np.asarray(wp[::-1])


def mcd(reference: np.ndarray, estimate: np.ndarray, cfg: AudioConfig, n_coeffs: int = 24) -> float:
    """Mel-cepstral distortion in dB after DTW: (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2),
    averaged over the aligned frame pairs (Kubichek, 1993)."""
    a = mel_cepstrum(reference, cfg, n_coeffs)
    b = mel_cepstrum(estimate, cfg, n_coeffs)
    path = dtw_path(a, b)
    diff = a[path[:, 0]] - b[path[:, 1]]
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * (diff**2).sum(axis=1))))


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Wideband PESQ (ITU-T P.862.2), both signals at 16 kHz, same length."""
    from pesq import pesq

    ref = resample(reference, sample_rate, 16000)
    est = resample(estimate, sample_rate, 16000)
    n = min(len(ref), len(est))
    return float(pesq(16000, ref[:n], est[:n], "wb"))


def stoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    from pystoi import stoi as _stoi

    n = min(len(reference), len(estimate))
    return float(_stoi(reference[:n], estimate[:n], sample_rate, extended=False))
