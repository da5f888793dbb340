"""Shared fixtures: tiny configs and checkpoints so every test runs on CPU in seconds."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.audio import AudioConfig
from studio.checkpoint import save_checkpoint
from studio.models.tacotron import Tacotron, TacotronConfig
from studio.text import Vocab

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints"

torch.set_num_threads(1)


def tiny_tacotron_config(n_speakers: int = 3, **kw) -> TacotronConfig:
    vocab = Vocab.phonemes()
    base = dict(n_symbols=len(vocab), n_mels=AudioConfig().n_mels, n_speakers=n_speakers, embed_dim=32,
                encoder_dim=32, encoder_convs=2, speaker_dim=8, attention_dim=16, location_filters=4,
                location_kernel=7, prenet_sizes=[32, 16], attention_rnn_dim=32, decoder_rnn_dim=32, r=4,
                postnet_channels=16, postnet_layers=3, max_steps_per_token=1.0)
    base.update(kw)
    return TacotronConfig(**base)


SPEAKERS = [{"id": "slt", "name": "Sally", "language": "en-US", "teacher": "flite slt"},
            {"id": "rms", "name": "Richard", "language": "en-US", "teacher": "flite rms"},
            {"id": "awb", "name": "Alan", "language": "en-US", "teacher": "flite awb"}]


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory) -> Path:
    """A checkpoint folder holding a random-weight tiny Tacotron (3 voices)."""
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    cfg = tiny_tacotron_config()
    model = Tacotron(cfg)
    save_checkpoint(d / "tacotron.pt", model, "tacotron", cfg, AudioConfig(), Vocab.phonemes().to_list(),
                    SPEAKERS, metrics={"steps": 0})
    return d


@pytest.fixture(scope="session")
def long_engine(tmp_path_factory):
    """A random tiny model that never fires its stop token: long takes of a known length."""
    from studio.engine import Engine

    d = tmp_path_factory.mktemp("long")
    cfg = tiny_tacotron_config(stop_threshold=2.0, eos_hold_steps=10000)
    torch.manual_seed(0)
    save_checkpoint(d / "tacotron.pt", Tacotron(cfg), "tacotron", cfg, AudioConfig(), Vocab.phonemes().to_list(),
                    SPEAKERS)
    return Engine(d)


@pytest.fixture(scope="session")
def engine(tiny_checkpoint_dir):
    from studio.engine import Engine

    return Engine(tiny_checkpoint_dir)


@pytest.fixture(scope="session")
def teacher_wav() -> np.ndarray:
    """A real utterance from a teacher voice (flite slt), 16 kHz."""
    from studio.training.corpus import TEACHERS, synthesize_teacher

    assert shutil.which("flite"), "flite is installed by the README's test command"
    return synthesize_teacher(TEACHERS["slt"], "The quick brown fox jumps over the lazy dog.", AudioConfig())


def assert_every_parameter_changes(model: torch.nn.Module, batch: dict, steps: int = 3) -> None:
    """A few optimizer steps must move every parameter (catches detached or unused layers)."""
    before = {k: v.clone() for k, v in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        model(batch)["loss"].backward()
        opt.step()
    unchanged = [k for k, v in model.named_parameters() if torch.equal(v, before[k])]
    assert not unchanged, unchanged
