"""Turn reports/*.json into reports/eval.md with tables and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

from studio.plots import save


def _load(d: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(d.glob("*.json"))}


def quality_table(results: dict[str, dict]) -> str:
    rows = ["| model | vocoder | voice | sentences | WER | teacher WER | WER / teacher (95% CI) | MCD (dB) | duration ratio "
            "| PESQ | STOI |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        if not name.startswith("quality_"):
            continue
        for v, row in r["voices"].items():
            cells = [r["model"], r["vocoder"] if r["model"] != "teacher" else "-", v, str(r.get("sentences", "-"))]
            cells += [str(row.get(k, "-")) for k in ("wer", "teacher_wer")]
            ci = row.get("wer_ratio_ci95")
            cells.append(f"{row['wer_ratio']} ({ci[0]}-{ci[1]})" if ci else str(row.get("wer_ratio", "-")))
            cells += [str(row.get(k, "-")) for k in ("mcd_db", "duration_ratio", "pesq_wb", "stoi")]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def hard_table(results: dict[str, dict]) -> str:
    rows = ["| model | hard sentences | failures | after retakes | skips | repeats | runaways | mean focus "
            "| mean monotonicity |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        if name.startswith("quality_") and "hard" in r:
            h = r["hard"]
            rows.append(f"| {r['model']} | {h['sentences']} | {h['failures']} | "
                        f"{h.get('failures_after_retakes', '-' if h['failures'] else 0)} | {h.get('skips', '-')} | "
                        f"{h.get('repeats', '-')} | {h.get('runaways', '-')} | {h.get('mean_focus_rate', '-')} | "
                        f"{h.get('mean_monotonicity', '-')} |")
    return "\n".join(rows)


def speed_table(speed: dict) -> str:
    rows = ["| component | seconds of compute per second of audio | notes |", "|---|---|---|"]
    for name, r in speed.get("acoustic", {}).items():
        rows.append(f"| {name} (acoustic) | {r['rtf']} | {r['parameters'] / 1e6:.1f} M params, "
                    f"first audio of a 10-line script in {r['time_to_first_audio_s']} s |")
        kv = r.get("kv_cache")
        if kv:
            rows.append(f"| {name} decoding with cached keys and values | {kv['speedup']}x faster | "
                        f"{kv['decoder_steps']} decoder steps in {kv['cached_s']} s, {kv['uncached_s']} s "
                        f"recomputing the prefix every step |")
    for name, r in speed.get("vocoder", {}).items():
        rows.append(f"| {name} (vocoder) | {r['rtf']} | |")
    for name, r in speed.get("peers", {}).items():
        rows.append(f"| {name} | ours {r['ours_s']} s vs peer {r['peer_s']} s | ratio {r['ratio']} |")
    wn = speed.get("wavenet_generation")
    if wn:
        by_line = ", ".join(f"{k} line {v}" for k, v in wn.get("folded_rtf_by_line", {}).items())
        what = ", ".join(x for x in (wn.get("layers"), f"{wn['parameters'] / 1e6:.2f} M params") if x)
        loops = (f"{wn['kernel']}; the same folds in the Python loop {wn['folded_python_rtf']}; one sequence "
                 f"unfolded {wn['unfolded_kernel_rtf']}; " if "kernel" in wn else "")
        rows.append(f"| WaveNet, folded batch generation ({what}) | {wn['folded_rtf']} | fold {wn['fold_seconds']} s"
                    f"{f' ({by_line})' if by_line else ''}; {loops}naive sample-by-sample in Python "
                    f"{wn['naive_rtf']}; torchaudio WaveRNN ({wn['wavernn_parameters'] / 1e6:.2f} M) "
                    f"{wn['wavernn_rtf']} |")
    rows.append(f"\nPeak resident memory: {speed.get('peak_rss_mb')} MB, {speed.get('threads')} threads.")
    return "\n".join(rows)


def plot_wer(results: dict[str, dict], path: Path) -> bool:
    import matplotlib.pyplot as plt
    import numpy as np

    series = [(r["model"] + "+" + r["vocoder"], r["voices"]) for n, r in results.items()
              if n.startswith("quality_") and r["model"] not in ("teacher", "copy")]
    if not series:
        return False
    voices = sorted({v for _, vs in series for v in vs})
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    width = 0.8 / (len(series) + 1)
    x = np.arange(len(voices))
    first = series[0][1]
    ax.bar(x, [first.get(v, {}).get("teacher_wer", 0) for v in voices], width, label="teacher")
    for i, (label, vs) in enumerate(series, 1):
        ax.bar(x + i * width, [vs.get(v, {}).get("wer", 0) for v in voices], width, label=label)
    ax.set_xticks(x + width * len(series) / 2)
    ax.set_xticklabels(voices)
    ax.set_ylabel("WER (pocketsphinx)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)
    return True


def plot_rtf(speed: dict, path: Path) -> bool:
    import matplotlib.pyplot as plt

    bars = [(f"{n} (acoustic)", r["rtf"]) for n, r in speed.get("acoustic", {}).items()]
    bars += [(f"{n} (vocoder)", r["rtf"]) for n, r in speed.get("vocoder", {}).items()]
    wn = speed.get("wavenet_generation")
    if wn:
        bars += [("WaveNet folded", wn["folded_rtf"])]
        bars += [("WaveNet folded, Python loop", wn["folded_python_rtf"])] if "folded_python_rtf" in wn else []
        bars += [("WaveNet naive", wn["naive_rtf"]),
                 ("torchaudio WaveRNN", wn["wavernn_rtf"])]
    if not bars:
        return False
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(bars) + 1), dpi=100)
    ax.barh([b[0] for b in bars], [b[1] for b in bars], color="tab:blue")
    ax.axvline(1.0, color="gray", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds of compute per second of audio (log scale; < 1 is faster than real time)")
    fig.tight_layout()
    save(fig, path)
    return True


def write_report(d: Path) -> Path:
    results = _load(d)
    parts = ["# Evaluation report", "",
             "Generated by `python -m studio eval report` from the JSON files beside it.", "",
             "## Quality (held-out sentences)", "", quality_table(results), "",
             "## Alignment health (hard sentences; failures without retakes, then after the engine's retakes)", "",
             hard_table(results), ""]
    if plot_wer(results, d / "wer.png"):
        parts += ["![WER per voice](wer.png)", ""]
    aligns = sorted(d.glob("align_*.png"))
    if aligns:
        parts += ["## Alignments", ""] + [f"![{p.stem}]({p.name})" for p in aligns] + [""]
    if "speed" in results:
        parts += ["## Speed (this 2-core CPU, batch 1)", "", speed_table(results["speed"]), ""]
        if plot_rtf(results["speed"], d / "rtf.png"):
            parts += ["![RTF](rtf.png)", ""]
    path = d / "eval.md"
    path.write_text("\n".join(parts))
    return path


README_MARKER = "<!-- numbers -->"


def update_readme(readme: Path, d: Path) -> None:
    """Replace everything after README_MARKER with the tables of reports/*.json."""
    results = _load(d)
    text = readme.read_text()
    if README_MARKER not in text:
        raise ValueError(f"{readme} has no {README_MARKER} line")
    parts = ["", "### Quality on held-out sentences (pocketsphinx WER beside the teacher's own WER)", "",
             quality_table(results), "",
             "### Alignment health on the hard-sentence list (failures without retakes, then after them)", "",
             hard_table(results), ""]
    if "speed" in results:
        parts += ["### Speed", "", speed_table(results["speed"]), ""]
    readme.write_text(text[: text.index(README_MARKER) + len(README_MARKER)] + "\n" + "\n".join(parts))
