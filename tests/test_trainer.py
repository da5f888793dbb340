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
