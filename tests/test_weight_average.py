"""The generators' weight average: its arithmetic, its checkpoint, and a resume from a state saved without one."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fsbench.train import checkpoint
from fsbench.train.average import WeightAverage
from fsbench.train.config import LoopConfig
from fsbench.train.dist import Dist
from fsbench.train.loop import Trainer

CPU = Dist(0, 1, torch.device("cpu"))


def _net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))


def test_the_average_moves_by_one_minus_decay_and_copies_buffers() -> None:
    net = _net()
    average = WeightAverage(net, 0.9)
    before = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.fill_(3.0)
    average.update()
    assert torch.allclose(average.average[0].weight, before + 0.1)
    assert torch.equal(average.average[1].running_mean, torch.full((2,), 3.0))
    assert not any(p.requires_grad for p in average.average.parameters())
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, 1.0)


def _trainer(step_run, out: Path, steps: int, net: torch.nn.Module, average: WeightAverage | None) -> Trainer:
    opt = torch.optim.SGD(net.parameters(), lr=0.5)

    def step(i: int) -> dict[str, float]:
        loss = net(torch.randn(4, 2)).sub(float(i)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach())}

    run = step_run({"net": net}, {"opt": opt}, step, average and {"net": average})
    trainer = Trainer(run, LoopConfig(steps, checkpoint_every=1), CPU, out)
    trainer.train()
    return trainer


def test_the_average_is_checkpointed_and_resumes_where_it_stopped(tmp_path: Path, step_run) -> None:
    torch.manual_seed(0)
    straight = WeightAverage(net := _net(), 0.5)
    _trainer(step_run, tmp_path / "a", 4, net, straight)
    assert not torch.allclose(straight.average[0].weight, net[0].weight)  # it lags the live weights

    torch.manual_seed(0)
    resumed = WeightAverage(net := _net(), 0.5)
    _trainer(step_run, tmp_path / "b", 2, net, resumed)
    assert "net_average" in checkpoint.module_names(tmp_path / "b" / "checkpoint.safetensors")
    torch.manual_seed(1)  # other initial weights: the run must take both networks from the checkpoint
    resumed = WeightAverage(net := _net(), 0.5)
    _trainer(step_run, tmp_path / "b", 4, net, resumed)
    for a, b in zip(straight.average.state_dict().values(), resumed.average.state_dict().values()):
        assert torch.allclose(a, b)


def test_a_state_saved_without_an_average_starts_it_from_the_live_weights(tmp_path: Path, step_run) -> None:
    torch.manual_seed(0)
    _trainer(step_run, tmp_path, 2, net := _net(), None)
    saved = net[0].weight.detach().clone()
    torch.manual_seed(1)
    average = WeightAverage(net := _net(), 0.5)
    run = step_run({"net": net}, {"opt": torch.optim.SGD(net.parameters(), lr=0.5)}, None, {"net": average})
    trainer = Trainer(run, LoopConfig(2), CPU, tmp_path)
    assert trainer.resume() == 2
    assert torch.equal(average.average[0].weight, saved) and torch.equal(net[0].weight, saved)
