"""The batched probes run unchanged on a GPU and agree with the CPU fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cogvision.harness.logistic import accuracy, fit_logistic


@pytest.mark.gpu
def test_logistic_on_gpu_matches_cpu() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    x = rng.standard_normal((32, 400, 64)).astype(np.float32)
    x[:, :, 0] += (2 * y - 1) * rng.uniform(0, 1, (32, 1))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    cpu = fit_logistic(xt, yt)
    gpu = fit_logistic(xt.cuda(), yt.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(accuracy(gpu, xt.cuda(), yt.cuda()).cpu(), accuracy(cpu, xt, yt))
