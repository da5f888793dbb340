import json
import subprocess
import sys

import pytest
import torch

from studio.checkpoint import load_checkpoint, save_checkpoint
from studio.eval.health import alignment_health
from studio.models.layers import Postnet, Prenet, guided_attention_loss, lengths_to_mask
from studio.models.tacotron import Tacotron
from studio.audio import AudioConfig
from tests.conftest import ROOT, assert_every_parameter_changes, tiny_tacotron_config


def make_batch(cfg, B=3, T_text=12, T_mel=37):
    torch.manual_seed(1)
    text_lengths = torch.tensor([T_text, T_text - 3, T_text - 5][:B])
    mel_lengths = torch.tensor([T_mel, T_mel - 6, T_mel - 11][:B])
    text = torch.randint(2, cfg.n_symbols, (B, T_text)) * lengths_to_mask(text_lengths)
    return {"text": text, "text_lengths": text_lengths, "mel": torch.randn(B, T_mel, cfg.n_mels) - 5,
            "mel_lengths": mel_lengths, "speaker": torch.tensor([0, 1, 2][:B])}


def test_layer_shapes():
    assert Prenet(80, [32, 16])(torch.randn(2, 5, 80)).shape == (2, 5, 16)
    assert Postnet(80, 16, 5, 3)(torch.randn(2, 9, 80)).shape == (2, 9, 80)
    a = torch.softmax(torch.randn(2, 10, 7), -1)
    loss = guided_attention_loss(a, torch.tensor([7, 5]), torch.tensor([10, 6]))
    assert loss.ndim == 0 and 0 <= float(loss) <= 1


def test_guided_attention_prefers_the_diagonal():
    T_dec, T_text = 20, 10
    diag = torch.zeros(1, T_dec, T_text)
    for t in range(T_dec):
        diag[0, t, t * T_text // T_dec] = 1
    anti = diag.flip(-1)
    lens = (torch.tensor([T_text]), torch.tensor([T_dec]))
    assert guided_attention_loss(diag, *lens) < 0.1 * guided_attention_loss(anti, *lens)


def test_forward_shapes_and_losses():
    cfg = tiny_tacotron_config()
    model = Tacotron(cfg)
    out = model(make_batch(cfg))
    T_dec = -(-37 // cfg.r)
    assert out["mel_after"].shape == (3, T_dec * cfg.r, cfg.n_mels)
    assert out["alignment"].shape == (3, T_dec, 12)
    assert out["stop_logits"].shape == (3, T_dec)
    assert torch.allclose(out["alignment"].sum(-1), torch.ones(3, T_dec), atol=1e-4)
    assert torch.isfinite(out["loss"]) and out["attn_loss"] > 0


def test_every_parameter_changes_after_a_few_steps():
    cfg = tiny_tacotron_config()
    assert_every_parameter_changes(Tacotron(cfg), make_batch(cfg))


def test_infer_shapes_and_length_limit():
    cfg = tiny_tacotron_config(stop_threshold=2.0)  # never stops: the length limit must end it
    model = Tacotron(cfg).eval()
    out = model.infer(torch.randint(2, cfg.n_symbols, (15,)), speaker=1)
    limit = int(20 + cfg.max_steps_per_token * 15)
    assert out.alignment.shape[0] <= limit and out.alignment.shape[1] == 15
    assert out.mel.shape == (out.alignment.shape[0] * cfg.r, cfg.n_mels)
    assert out.stop.shape == (out.alignment.shape[0],)


def test_save_load_identical_output(tmp_path):
    cfg = tiny_tacotron_config()
    model = Tacotron(cfg).eval()
    model.set_mel_stats(torch.full((cfg.n_mels,), -5.0), torch.full((cfg.n_mels,), 2.0))
    path = save_checkpoint(tmp_path / "t.pt", model, "tacotron", cfg, AudioConfig(), ["_", "~"], [])
    blob = load_checkpoint(path)
    clone = Tacotron(tiny_tacotron_config()).eval()
    clone.load_state_dict(blob["state_dict"])
    ids = torch.randint(2, cfg.n_symbols, (10,))
    a, b = model.infer(ids, seed=3), clone.infer(ids, seed=3)
    torch.testing.assert_close(a.mel, b.mel)
    torch.testing.assert_close(a.alignment, b.alignment)
    c = model.infer(ids, seed=4)  # another seed: another dropout mask, another take
    assert not torch.equal(a.mel_before[:4], c.mel_before[:4])


def test_monotonic_constraint_prevents_a_forced_skip():
    """Make the attention score prefer the last symbol; only the window keeps it on track."""
    cfg = tiny_tacotron_config(stop_threshold=2.0, eos_hold_steps=1000, max_steps_per_token=2.0)
    model = Tacotron(cfg).eval()
    T = 30

    def jumpy_score(query, processed_memory, weights_cat):
        e = torch.zeros(query.shape[0], processed_memory.shape[1])
        e[:, -1] = 50.0  # everything pulls to the end of the sentence
        e[:, 0] = 10.0
        return e

    model.attention.score = jumpy_score
    ids = torch.randint(2, cfg.n_symbols, (T,))
    free = alignment_health(model.infer(ids, monotonic=False, max_steps=40).alignment.numpy())
    guarded = alignment_health(model.infer(ids, monotonic=True, max_steps=40).alignment.numpy())
    assert free["skips"], "without the window the peak jumps straight to the end"
    assert not guarded["skips"]
    assert guarded["monotonicity"] == 1.0


def _tiny_corpus(tmp_path):
    from studio.training.corpus import build_corpus

    sentences = ["The cat sat on the mat.", "A dog ran in the park.", "We like green tea.",
                 "It is cold today.", "Open the door, please.", "Birds sing at dawn."]
    return build_corpus(tmp_path / "corpus", ["slt", "rms"], sentences, per_voice=4, seed=0, workers=1)


def test_train_infer_resume(tmp_path):
    """Train a few steps on a tiny real corpus, infer from the export, resume to more steps."""
    corpus = _tiny_corpus(tmp_path)
    rows = (corpus / "metadata.csv").read_text().strip().splitlines()
    assert len(rows) == 8 and all(len(r.split("|")) == 4 for r in rows)
    cfg = {"model": {k: v for k, v in tiny_tacotron_config().__dict__.items()
                     if k not in ("n_symbols", "n_mels", "n_speakers")},
           "train": {"batch_size": 4, "max_steps": 3, "save_every": 2, "sample_every": 3, "log_every": 1}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "studio.training.train", "tacotron", "--data", str(corpus), "--out", str(run),
           "--config", str(tmp_path / "cfg.json")]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert load_checkpoint(run / "last.pt")["train_state"]["step"] == 3
    assert list((run / "samples").glob("align_*.png")) and list((run / "samples").glob("sample_*.wav"))

    from studio.engine import Engine

    (tmp_path / "ship").mkdir()
    (run / "model.pt").rename(tmp_path / "ship" / "tacotron.pt")
    take = Engine(tmp_path / "ship").synthesize("The cat ran.", voice="rms")
    assert take.audio.size > 0 and take.sample_rate == 16000

    res = subprocess.run(cmd + ["--set", "train.max_steps=5", "--set", "train.keep_every=2"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resumed from" in res.stderr
    assert load_checkpoint(run / "last.pt")["train_state"]["step"] == 5
    kept = sorted((run / "snapshots").glob("model_*.pt"))
    assert [p.name for p in kept] == ["model_4.pt"]  # steps 4 and 5 ran; only 4 is a multiple of 2
    snap = load_checkpoint(kept[0])
    assert snap["metrics"]["steps"] == 4 and "train_state" not in snap
    assert snap["state_dict"]["embedding.weight"].dtype == torch.float16
    steps = [int(line.split(",")[0]) for line in (run / "scalars.csv").read_text().splitlines()[1:]]
    assert steps == [1, 2, 3, 4, 5]

    # fine-tune the exported r=4 model at r=2
    res = subprocess.run(cmd[:6] + ["--out", str(tmp_path / "r2"), "--init", str(tmp_path / "ship" / "tacotron.pt"),
                                    "--set", "model.r=2", "--set", "train.max_steps=4", "--set", "train.batch_size=4",
                                    "--set", "train.lr=5e-4", "--set", "train.num_workers=1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "initialising an r=2 model from an r=4 checkpoint" in res.stderr
    r2 = load_checkpoint(tmp_path / "r2" / "last.pt")["config"]
    r4 = load_checkpoint(tmp_path / "ship" / "tacotron.pt")["config"]
    assert r2["r"] == 2 and r2["max_steps_per_token"] == 2 * r4["max_steps_per_token"]

    # resuming that run keeps its own settings (the tiny architecture, the doubled limits, the batch size and
    # learning rate it was given), not defaults; --set still changes one
    res = subprocess.run(cmd[:6] + ["--out", str(tmp_path / "r2"), "--set", "train.max_steps=6"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    resumed = load_checkpoint(tmp_path / "r2" / "last.pt")
    assert resumed["train_state"]["step"] == 6 and resumed["config"] == r2
    train = resumed["train_state"]["train"]
    assert (train["batch_size"], train["lr"], train["max_steps"]) == (4, 5e-4, 6)
    assert train["num_workers"] == 0  # the machine's settings are not the run's


def test_ddp_two_processes_on_gloo(tmp_path):
    corpus = _tiny_corpus(tmp_path)
    cfg = {"model": {k: v for k, v in tiny_tacotron_config().__dict__.items()
                     if k not in ("n_symbols", "n_mels", "n_speakers")},
           "train": {"batch_size": 2, "max_steps": 2, "save_every": 1, "sample_every": 100, "log_every": 1,
                     "threads": 1}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "studio.training.train", "tacotron", "--data", str(corpus), "--out", str(tmp_path / "run"),
           "--config", str(tmp_path / "cfg.json")]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    blob = load_checkpoint(tmp_path / "run" / "last.pt")
    assert blob["train_state"]["step"] == 2
    assert not any(k.startswith("module.") for k in blob["state_dict"])



def test_sigterm_saves_and_exits_cleanly(tmp_path):
    """A background run (SIGINT ignored, as under `nohup ... &`) stops on SIGTERM after the
    current step, with a resumable last.pt."""
    import signal
    import time

    corpus = _tiny_corpus(tmp_path)
    cfg = {"model": {k: v for k, v in tiny_tacotron_config().__dict__.items()
                     if k not in ("n_symbols", "n_mels", "n_speakers")},
           "train": {"batch_size": 2, "max_steps": 100000, "save_every": 100000, "sample_every": 100000,
                     "log_every": 1, "threads": 1}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "studio.training.train", "tacotron", "--data", str(corpus), "--out", str(run),
           "--config", str(tmp_path / "cfg.json")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            csv = run / "scalars.csv"
            if csv.exists() and len(csv.read_text().splitlines()) >= 3:  # header + 2 steps
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "stop requested" in err
    logged = len((run / "scalars.csv").read_text().splitlines()) - 1
    assert load_checkpoint(run / "last.pt")["train_state"]["step"] >= logged >= 2

@pytest.mark.parametrize("frontend", ["characters"])
def test_character_model_trains(frontend):
    from studio.text import Vocab

    cfg = tiny_tacotron_config(n_symbols=len(Vocab.characters()), frontend=frontend)
    model = Tacotron(cfg)
    assert torch.isfinite(model(make_batch(cfg))["loss"])


def test_fewer_frames_per_step_keeps_the_first_frames(tmp_path):
    from studio.checkpoint import config_from_dict, fewer_frames_per_step
    from studio.models.tacotron import TacotronConfig

    cfg = tiny_tacotron_config()
    cfg.r, cfg.prenet_dropout = 4, 0.0  # no dropout: both models see the same step 0
    old = Tacotron(cfg).eval()
    save_checkpoint(tmp_path / "r4.pt", old, "tacotron", cfg, AudioConfig(n_mels=cfg.n_mels))
    blob = fewer_frames_per_step(load_checkpoint(tmp_path / "r4.pt"), 2)
    assert blob["config"]["r"] == 2 and blob["config"]["max_steps_per_token"] == 2 * cfg.max_steps_per_token
    new = Tacotron(config_from_dict(TacotronConfig, blob["config"])).eval()
    new.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})  # strict: every weight fits
    batch = make_batch(cfg)
    with torch.no_grad():
        a, b = old(batch), new(batch)
    # decoder step 0 of the r=2 model predicts the first 2 of the 4 frames of the r=4 model's step 0
    torch.testing.assert_close(b["mel_before"][:, :2], a["mel_before"][:, :2])
    torch.testing.assert_close(b["stop_logits"][:, 0], a["stop_logits"][:, 0])
    assert b["alignment"].shape[1] == 2 * a["alignment"].shape[1] - 1  # 37 frames: 19 vs 10 steps
    with pytest.raises(ValueError):
        fewer_frames_per_step(blob, 3)
