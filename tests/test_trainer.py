import pytest

from studio.training.trainer import TrainConfig, lr_at


def test_learning_rate_warms_up_decays_and_restarts():
    cfg = TrainConfig(lr=1e-3, lr_min=1e-5, warmup_steps=100, decay_steps=1000)
    assert lr_at(0, cfg) == pytest.approx(1e-5) and lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(1100, cfg) == pytest.approx(5e-4)
    assert lr_at(10 ** 6, cfg) == pytest.approx(1e-5)  # the floor
    warm = TrainConfig(lr=1e-3, lr_min=1e-5, warmup_steps=100, decay_steps=1000, restart_step=15000)
    assert lr_at(15099, warm) == pytest.approx(1e-3) and lr_at(16100, warm) == pytest.approx(5e-4)
    assert lr_at(15000, warm) == pytest.approx(1e-5)  # warming up again from the restart


def test_moving_average_of_the_weights_is_exported_and_resumed(tmp_path):
    import torch

    from studio.audio import AudioConfig
    from studio.checkpoint import load_checkpoint
    from studio.training.trainer import Trainer
    from studio.vocoders.wavenet import WaveNet, WaveNetConfig

    def batches(epoch):
        g = torch.Generator().manual_seed(epoch)
        for _ in range(3):
            yield {"audio": torch.randint(0, 16, (2, 400), generator=g), "mel": torch.randn(2, 2, 80, generator=g),
                   "speaker": torch.zeros(2, dtype=torch.long)}

    def run(max_steps):
        cfg = WaveNetConfig(quantize_channels=16, layers=2, stacks=1, residual_channels=8, gate_channels=8,
                            skip_channels=8, cond_channels=8)
        torch.manual_seed(0)
        model = WaveNet(cfg)
        meta = dict(model_type="wavenet", config=cfg, audio=AudioConfig(), vocab=None, speakers=[{"id": "a"}])
        trainer = Trainer(model, TrainConfig(max_steps=max_steps, ema_decay=0.9, warmup_steps=1, lr=1e-2),
                          tmp_path, meta, batches)
        trainer.resume()
        resumed_average = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
        trainer.train()
        return trainer, resumed_average

    t, _ = run(5)
    shipped = load_checkpoint(tmp_path / "model.pt")["state_dict"]
    raw = load_checkpoint(tmp_path / "last.pt")["state_dict"]
    key = "blocks.0.conv.weight"
    assert torch.allclose(shipped[key].float(), t.ema.state_dict()[key], atol=1e-3)
    assert not torch.allclose(shipped[key].float(), raw[key].float(), atol=1e-4)  # the average lags the weights
    t2, resumed_average = run(6)  # resumes at step 5 with the average it had, and goes on averaging
    assert t2.step == 6
    assert torch.allclose(resumed_average[key], t.ema.state_dict()[key])
    assert "ema" in load_checkpoint(tmp_path / "last.pt")["train_state"]
