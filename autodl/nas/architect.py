"""Architecture steps of DARTS: the bilevel problem ``min_alpha L_val(w*(alpha), alpha)`` with
``w*(alpha) = argmin_w L_train(w, alpha)``, solved by alternating one architecture step (on a
validation batch) and one weight step (on a training batch).

* **first order** (``order=1``): ``grad_alpha L_val(w, alpha)`` -- the current weights stand
  in for ``w*``.
* **second order** (``order=2``): one unrolled weight step ``w' = w - xi * (grad_w L_train(w,
  alpha) + wd * w)``, then

  ``grad_alpha L_val(w', alpha) - xi * (grad_alpha L_train(w+, alpha) - grad_alpha
  L_train(w-, alpha)) / (2 eps)``

  with ``w+- = w +- eps * grad_w' L_val(w', alpha)`` and ``eps = fd_radius / ||grad_w' L_val||``
  (``fd_radius = 0.01`` as in DARTS): the Hessian-vector product of the chain rule by central
  finite differences (Liu et al. 2019, eq. 7-8). The test suite checks it against autograd
  through the unrolled step (float64, small radius: agreement to ~1e-12); with the default
  radius on very small, strongly curved supernets the finite difference is coarse. The weights (and BatchNorm buffers) are restored afterwards, so only the
  architecture weights change.

The architecture optimizer is Adam (betas 0.5, 0.999, weight decay 1e-3 as in DARTS).
"""

from __future__ import annotations

import torch


class Architect:
    """Computes and applies architecture gradients for a network with ``arch_parameters()``,
    ``weight_parameters()`` and ``loss(x, y)`` (e.g. :class:`~autodl.nas.model_search.SearchNetwork`).

    Args:
        model: the supernet.
        order: 1 (first-order) or 2 (second-order, finite-difference Hessian-vector product).
        arch_lr: Adam learning rate of the architecture weights.
        arch_weight_decay: Adam weight decay of the architecture weights.
        weight_decay: weight decay in the unrolled weight step (second order).
        fd_radius: norm of the finite-difference perturbation of the weights (second order).
    """

    def __init__(self, model, order: int = 1, arch_lr: float = 3e-3, arch_weight_decay: float = 1e-3,
                 weight_decay: float = 3e-4, fd_radius: float = 0.01):
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order!r}")
        self.model = model
        self.order = int(order)
        self.weight_decay = float(weight_decay)
        self.fd_radius = float(fd_radius)
        self.optimizer = torch.optim.Adam(model.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999),
                                          weight_decay=arch_weight_decay)

    # ------------------------------------------------------------------ gradients
    def gradients(self, x_train, y_train, x_val, y_val, xi: float) -> list[torch.Tensor]:
        """The architecture gradient (one tensor per ``arch_parameters()``), without stepping.

        ``xi`` is the unrolled step size (the current weight learning rate); unused at first order.
        """
        arch = list(self.model.arch_parameters())
        if self.order == 1 or xi == 0:
            loss = self.model.loss(x_val, y_val)
            return list(torch.autograd.grad(loss, arch))
        weights = list(self.model.weight_parameters())
        buffers = [b.detach().clone() for b in self.model.buffers()]
        w0 = [p.detach().clone() for p in weights]
        try:
            # unrolled step w' = w - xi (grad_w L_train + wd w)
            g_train = torch.autograd.grad(self.model.loss(x_train, y_train), weights, allow_unused=True)
            with torch.no_grad():
                for p, g in zip(weights, g_train):
                    step = self.weight_decay * p if g is None else g + self.weight_decay * p
                    p.sub_(xi * step)
            # grad_alpha L_val(w') and v = grad_w' L_val(w')
            grads = torch.autograd.grad(self.model.loss(x_val, y_val), arch + weights, allow_unused=True)
            d_alpha = [g if g is not None else torch.zeros_like(a) for g, a in zip(grads[:len(arch)], arch)]
            v = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads[len(arch):], weights)]
            norm = torch.sqrt(sum((g * g).sum() for g in v))
            eps = self.fd_radius / (float(norm) + 1e-12)
            hessian = []
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    for p, p0, g in zip(weights, w0, v):
                        p.copy_(p0 + sign * eps * g)
                hessian.append(torch.autograd.grad(self.model.loss(x_train, y_train), arch))
            return [da - xi * (gp - gm) / (2 * eps) for da, gp, gm in zip(d_alpha, *hessian)]
        finally:
            with torch.no_grad():
                for p, p0 in zip(weights, w0):
                    p.copy_(p0)
                for b, b0 in zip(self.model.buffers(), buffers):
                    b.copy_(b0)

    def step(self, x_train, y_train, x_val, y_val, xi: float = 0.0) -> list[torch.Tensor]:
        """One architecture update; returns the gradient used."""
        grads = self.gradients(x_train, y_train, x_val, y_val, xi)
        self.optimizer.zero_grad(set_to_none=True)
        for a, g in zip(self.model.arch_parameters(), grads):
            a.grad = g.detach().clone()
        self.optimizer.step()
        return grads
