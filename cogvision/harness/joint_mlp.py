"""The joint-MLP probe of the predecessor code, with gradient x activation head importance.

One network reads all heads: a Linear(d -> 64) shared by every head, the per-head outputs
concatenated, a 512-unit hidden layer with ReLU and dropout 0.3, and a softmax over functions. It is
trained on the fit rows (class-weighted cross-entropy, Adam); head h's importance for function f is
the mean over f's fit rows of |sum_d x_hd * d logit_f / d x_hd|. Selection then cuts each function's
sorted importance curve at its elbow (``select``, method ``elbow``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from cogvision.harness.probe import ProbeData, ProbeOptions


class JointMLP(nn.Module):
    """logits [batch, functions] from head vectors [batch, heads, d]."""

    def __init__(self, n_heads: int, d: int, n_classes: int, *, per_head: int = 64,
                 hidden: int = 512, dropout: float = 0.3) -> None:
        super().__init__()
        self.per_head = nn.Linear(d, per_head)
        self.mlp = nn.Sequential(nn.Linear(n_heads * per_head, hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.per_head(x)  # [B, heads, per_head]
        return self.mlp(h.flatten(1))


def _standardise(x: torch.Tensor, fit: torch.Tensor) -> torch.Tensor:
    mean = x[fit].mean(0, keepdim=True)
    std = x[fit].std(0, keepdim=True).clamp_min(1e-6)
    return (x - mean) / std


def train_joint(x: torch.Tensor, y: torch.Tensor, fit: torch.Tensor, n_classes: int,
                options: ProbeOptions, gen: torch.Generator) -> JointMLP:
    """Train on rows ``fit`` of x [n, heads, d] with labels y [n]."""
    model = JointMLP(x.shape[1], x.shape[2], n_classes)
    with torch.no_grad():  # initialise from the passed-in generator, not the global RNG
        for p in model.parameters():
            p.uniform_(-1.0, 1.0, generator=gen).mul_(1.0 / np.sqrt(max(1, p.shape[-1])))
    counts = torch.bincount(y[fit], minlength=n_classes).clamp_min(1).float()
    loss_fn = nn.CrossEntropyLoss(weight=counts.sum() / (n_classes * counts))
    opt = torch.optim.Adam(model.parameters(), lr=options.mlp_lr)
    model.train()
    for _ in range(options.mlp_epochs):
        order = fit[torch.randperm(len(fit), generator=gen)]
        for start in range(0, len(order), options.mlp_batch):
            batch = order[start : start + options.mlp_batch]
            opt.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            opt.step()
    model.eval()
    return model


def grad_x_activation(model: JointMLP, x: torch.Tensor, y: torch.Tensor, fit: torch.Tensor,
                      n_classes: int) -> torch.Tensor:
    """Importance [functions, heads]: mean over the function's fit rows of |sum_d x * grad|."""
    out = torch.zeros(n_classes, x.shape[1])
    for f in range(n_classes):
        rows = fit[y[fit] == f]
        if len(rows) == 0:
            out[f] = float("nan")
            continue
        xf = x[rows].clone().requires_grad_(True)
        model(xf)[:, f].sum().backward()
        assert xf.grad is not None
        out[f] = (xf * xf.grad).sum(-1).abs().mean(0).detach()
    return out


def joint_mlp_scores(data: ProbeData, options: ProbeOptions,
                     rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Importance [functions, layers, heads] and the joint classifier's validation accuracy."""
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    x = data.x.to(torch.float32)
    fit, val = torch.from_numpy(data.fit), torch.from_numpy(data.val)
    x = _standardise(x, fit)
    label = {f: i for i, f in enumerate(data.functions)}
    y = torch.tensor([label[r.function] for r in data.rows])
    model = train_joint(x, y, fit, len(data.functions), options, gen)
    with torch.no_grad():
        val_acc = float((model(x[val]).argmax(-1) == y[val]).float().mean()) if len(val) else None
    imp = grad_x_activation(model, x, y, fit, len(data.functions))
    scores = imp.numpy().reshape(len(data.functions), data.n_layers, data.n_heads)
    return scores, {"score": "gradient x activation importance", "joint_val_accuracy": val_acc}
