"""Batched L2-regularised logistic regression: one independent probe per head, all heads at once.

Minimises, for every head h independently, ``sum_i logloss(y_i, x_ih . w_h + b_h) + lam/2 |w_h|^2``
(scikit-learn's ``LogisticRegression(C=1/lam)`` objective; the intercept is not penalised) by
Newton's method with batched matrix products (``torch.bmm``) and batched solves, so the same code
runs on CPU or GPU. Newton converges in a handful of iterations (quadratically near the optimum); a
step that would increase a head's loss is halved for that head (damping), so every head's loss
decreases.
"""

from __future__ import annotations

import torch


def augment(x: torch.Tensor) -> torch.Tensor:
    """Append a constant-1 feature for the intercept: [heads, n, d] -> [heads, n, d + 1]."""
    ones = torch.ones(*x.shape[:2], 1, dtype=x.dtype, device=x.device)
    return torch.cat([x, ones], dim=-1)


def _loss(xa: torch.Tensor, y: torch.Tensor, w: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Per-head objective; xa [H, n, d1], y [1, n, 1], w [H, d1, 1] -> [H]."""
    z = torch.bmm(xa, w)  # [H, n, 1]
    nll = torch.nn.functional.softplus(z) - y * z
    return nll.sum(dim=(1, 2)) + 0.5 * (reg.view(1, -1, 1) * w * w).sum(dim=(1, 2))


def fit_logistic(x: torch.Tensor, y: torch.Tensor, *, lam: float = 1.0, max_iter: int = 25,
                 tol: float = 1e-4) -> torch.Tensor:
    """Fit one logistic probe per head.

    Args:
        x: features [heads, n, d] (float32 or float64; on any device).
        y: labels [n] in {0, 1}.
        lam: L2 strength (``1 / C`` in scikit-learn terms).
        max_iter: Newton iterations at most.
        tol: a head has converged when its step is below ``tol * (1 + max|w|)``; converged heads
            leave the batch, so the last iterations only pay for the slow heads.

    Returns:
        Weights [heads, d + 1] (the last column is the intercept).
    """
    xa = augment(x)
    heads, n, d1 = xa.shape
    reg = torch.full((d1,), float(lam), dtype=xa.dtype, device=xa.device)
    reg[-1] = 0.0
    eye = torch.diag(reg) + 1e-6 * torch.eye(d1, dtype=xa.dtype, device=xa.device)
    yy = y.to(xa.dtype).view(1, n, 1)
    out = torch.zeros(heads, d1, 1, dtype=xa.dtype, device=xa.device)
    idx = torch.arange(heads, device=xa.device)  # heads still in the batch
    w = out.clone()
    loss = _loss(xa, yy, w, reg)
    for _ in range(max_iter):
        p = torch.sigmoid(torch.bmm(xa, w))  # [h, n, 1]
        # r^T X in row-major order is much faster than X^T r on CPU
        grad = torch.bmm((p - yy).transpose(1, 2), xa).transpose(1, 2) + reg.view(1, d1, 1) * w
        hess = torch.bmm(xa.transpose(1, 2), xa * (p * (1 - p))) + eye  # [h, d1, d1]
        step = torch.linalg.solve(hess, grad)
        w, loss = _damped(xa, yy, w, step, reg, loss)
        done = step.abs().amax(dim=(1, 2)) <= tol * (1 + w.abs().amax(dim=(1, 2)))
        out[idx] = w
        if bool(done.all()):
            break
        if int(done.sum()) * 4 >= len(idx):  # drop converged heads once a quarter are done
            keep = ~done
            idx, xa, w, loss = idx[keep], xa[keep], w[keep], loss[keep]
    return out[..., 0]


def _damped(xa: torch.Tensor, y: torch.Tensor, w: torch.Tensor, step: torch.Tensor,
            reg: torch.Tensor, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Take the Newton step, halving it (per head, up to 8 times) where the loss would rise."""
    scale = torch.ones(w.shape[0], 1, 1, dtype=w.dtype, device=w.device)
    for _ in range(8):
        cand = w - scale * step
        new = _loss(xa, y, cand, reg)
        worse = new > loss + 1e-6 * loss.abs().clamp_min(1.0)
        if not bool(worse.any()):
            return cand, new
        scale = torch.where(worse.view(-1, 1, 1), scale * 0.5, scale)
    cand = w - scale * step
    new = _loss(xa, y, cand, reg)
    keep = new <= loss
    return torch.where(keep.view(-1, 1, 1), cand, w), torch.where(keep, new, loss)


def predict_logits(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Logits [heads, n] of probes w [heads, d + 1] on x [heads, n, d]."""
    return torch.bmm(x, w[:, :-1, None])[..., 0] + w[:, -1:]


def accuracy(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Accuracy [heads] of probes on x [heads, n, d] with labels y [n]."""
    pred = predict_logits(w, x) > 0
    return (pred == y.to(torch.bool).view(1, -1)).to(torch.float32).mean(dim=1)
