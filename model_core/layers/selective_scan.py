"""Pure-PyTorch Mamba-1 selective scan (drop-in for ``mamba_ssm``'s ``selective_scan_fn`` maths).

Two entry points share one signature:

* :func:`selective_scan_reference` -- the plain sequential recurrence, one Python step per time step.
  Slow but obviously correct; the tests use it as ground truth.
* :func:`selective_scan` -- a chunked scan that is numerically identical up to float rounding and
  fast on CPU for long sequences (tens of thousands of steps).

Shapes (as in ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``)::

    u, delta, z : (batch, d_inner, L)
    A           : (d_inner, N)          real, negative
    B, C        : (batch, N, L)
    D, delta_bias : (d_inner,)

Maths (evaluated in float32, or float64 for float64 inputs; the result has ``u``'s dtype)::

    delta = softplus(delta + delta_bias)            # each step optional
    h_t   = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t      # h_{-1} = 0, h: (batch, d_inner, N)
    y_t   = sum_n C_t[n] * h_t[..., n]
    y     = (y + D * u) * silu(z)                   # each term optional

How the fast scan works (and why it is stable)
----------------------------------------------
The sequence is cut into *segments* of ``segment_len`` steps that are processed one after the other,
carrying the state (all temporaries are O(batch * d_inner * segment_len), independent of L), and every
segment into *chunks* of ``chunk_size`` steps.  Per segment:

1. the recurrence runs inside every chunk from a zero state: a loop of ``chunk_size`` steps, each step
   one set of tensor ops over all chunks of the segment at once; only the chunk-end states are kept;
2. a short loop over the chunks turns those into the true chunk-entry states; the decay over a whole
   chunk is ``exp(A * sum(delta over the chunk))`` because ``A`` does not depend on time;
3. the recurrence is rerun inside every chunk, now starting from the true entry states, and
   ``y_t = C_t . h_t`` is taken on the fly.

So there are about ``2 * chunk_size + segment_len / chunk_size`` Python iterations per segment, not one
per time step.  Every factor is ``exp`` of a non-positive number, a decay in [0, 1]; nothing is ever
divided by a cumulative decay (no ``exp(-cumsum(delta * A))``), so ``delta * A`` of -100 or -1000 per
step only underflows harmlessly to 0.

Without gradients (inference) the steps update two small preallocated state buffers in place; with
gradients an out-of-place twin of the same algorithm is used and autograd differentiates it (no custom
backward), so the gradients are those of the same maths.

Speed and memory, measured: docs/benchmarks.md (selective scan).

Defaults: chunk_size=32, segment_len=512 without gradients (chunks of 16-64 and segments of 256-2048
steps were all within noise; 512 keeps the buffers small); 8 / 64 with gradients (autograd handles
whole-segment tensors, and 32 / 512 took 0.9 s at L=600).  Note: with 2 threads on a busy 2-core machine every op's
thread hand-off can stall (10-20x slower runs were seen); one thread is the robust choice there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["selective_scan", "selective_scan_reference"]


def _compute_dtype(*tensors: Tensor | None) -> torch.dtype:
    """float64 if any input is float64, else float32 (half inputs are upcast for accuracy)."""
    if any(t is not None and t.dtype == torch.float64 for t in tensors):
        return torch.float64
    return torch.float32


def _check_shapes(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                  z: Tensor | None, delta_bias: Tensor | None) -> None:
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, d_inner, L), got {tuple(u.shape)}")
    batch, d_inner, length = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"delta shape {tuple(delta.shape)} != u shape {tuple(u.shape)}")
    if A.dim() != 2 or A.shape[0] != d_inner:
        raise ValueError(f"A must be (d_inner={d_inner}, N), got {tuple(A.shape)}")
    if A.is_complex():
        raise ValueError("complex A is not supported (Mamba-1 uses real A)")
    n = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if tuple(t.shape) != (batch, n, length):
            raise ValueError(f"{name} must be (batch, N, L)={(batch, n, length)}, got {tuple(t.shape)}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and tuple(t.shape) != (d_inner,):
            raise ValueError(f"{name} must be (d_inner,)={(d_inner,)}, got {tuple(t.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"z shape {tuple(z.shape)} != u shape {tuple(u.shape)}")


def _prepare_delta(delta: Tensor, delta_bias: Tensor | None, delta_softplus: bool, dtype: torch.dtype) -> Tensor:
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return delta


def _finish(y: Tensor, u: Tensor, D: Tensor | None, z: Tensor | None, out_dtype: torch.dtype) -> Tensor:
    if D is not None:
        y = y + D.to(y.dtype)[:, None] * u.to(y.dtype)
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(out_dtype)


def selective_scan_reference(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
) -> Tensor:
    """Sequential selective scan: one Python step per time step. Ground truth for tests; slow."""
    _check_shapes(u, delta, A, B, C, D, z, delta_bias)
    dtype = _compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    delta = _prepare_delta(delta, delta_bias, delta_softplus, dtype)
    uf, Af, Bf, Cf = u.to(dtype), A.to(dtype), B.to(dtype), C.to(dtype)
    batch, d_inner, length = u.shape
    h = uf.new_zeros(batch, d_inner, Af.shape[1])
    ys = []
    for t in range(length):
        d_t = delta[:, :, t, None]  # (batch, d_inner, 1)
        h = torch.exp(d_t * Af) * h + (d_t * uf[:, :, t, None]) * Bf[:, None, :, t]
        ys.append((h * Cf[:, None, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1) if ys else uf.new_zeros(batch, d_inner, 0)
    return _finish(y, uf, D, z, u.dtype)


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    *,
    chunk_size: int | None = None,
    segment_len: int | None = None,
) -> Tensor:
    """Chunked selective scan; same maths and result as :func:`selective_scan_reference`, fast on CPU.

    ``chunk_size``: length of the chunks scanned side by side.  ``segment_len``: steps processed per
    segment (rounded down to a multiple of ``chunk_size``, at least one chunk); it bounds the
    temporaries to O(batch * d_inner * segment_len) elements whatever L is.  ``None`` picks the
    defaults tuned for the mode: 32 / 512 without gradients, 8 / 64 when a gradient is needed.

    Differentiable: when a gradient is needed an out-of-place version runs under plain autograd (which
    then stores per-step states, O(batch * d_inner * L * N), as any autograd scan must).
    """
    _check_shapes(u, delta, A, B, C, D, z, delta_bias)
    need_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (u, delta, A, B, C, D, z, delta_bias)
    )
    default_chunk, default_segment = _GRAD_DEFAULTS if need_grad else _NO_GRAD_DEFAULTS
    chunk_size = default_chunk if chunk_size is None else chunk_size
    segment_len = default_segment if segment_len is None else segment_len
    if chunk_size < 1 or segment_len < 1:
        raise ValueError("chunk_size and segment_len must be positive")
    batch, d_inner, length = u.shape
    if length == 0:
        return u.new_zeros(batch, d_inner, 0)
    dtype = _compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    T = min(chunk_size, length)  # no point in a chunk longer than the sequence
    seg = min(max(1, segment_len // T), -(-length // T)) * T  # steps per segment, a multiple of T
    # exp(x) == exp2(x * log2(e)); torch's exp2 is ~2.7x faster than exp on CPU and the exponentials are
    # the most expensive step.  A is stored transposed, (N, d_inner), so that every state-sized tensor is
    # (..., N, d_inner) with the long d_inner axis contiguous (vectorises better than N=16).
    A2 = (A.to(dtype) * _LOG2E).t().contiguous()
    run = _scan_autograd if need_grad else _scan_no_grad
    return run(u, delta, A2, B, C, D, z, delta_bias, delta_softplus, T, seg, dtype)


_LOG2E = 1.4426950408889634
# (chunk_size, segment_len) defaults, tuned on a 2-core Zen 4 VM for d_inner=1024, N=16 (see module doc).
# Inference: per-step tensors of (segment_len / chunk_size) chunks x N x d_inner (~1 MB) amortise the
# per-op overhead while staying mostly in L2; 256-2048 steps and chunks of 16-64 were within noise.
# Training: autograd works on whole-segment tensors, which must stay small (at L=600 fwd+bwd took
# 0.9 s with 32/512 versus 0.25 s with 8/64).
_NO_GRAD_DEFAULTS = (32, 512)
_GRAD_DEFAULTS = (8, 64)


def _scan_no_grad(u: Tensor, delta: Tensor, A2: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                  z: Tensor | None, delta_bias: Tensor | None, delta_softplus: bool, T: int, seg: int,
                  dtype: torch.dtype) -> Tensor:
    """Inference path: segment by segment, every slab-sized intermediate lives in a reused buffer.

    Fresh multi-MB tensors per segment cost page faults (expensive in a VM) and the prologue/epilogue
    ops had become half of the run time; with ``out=`` into a workspace they are a small fraction.
    """
    batch, d_inner, length = u.shape
    n = A2.shape[0]
    ws = _Workspace(batch, d_inner, n, seg, T, dtype, u.device)
    out = torch.empty(batch, d_inner, length, dtype=u.dtype, device=u.device)
    bias = delta_bias.to(dtype)[:, None] if delta_bias is not None else None
    Dc = D.to(dtype)[:, None] if D is not None else None
    state = u.new_zeros(batch, 1, n, d_inner, dtype=dtype)  # state entering the current segment
    for s0 in range(0, length, seg):
        s1 = min(length, s0 + seg)
        steps = s1 - s0
        padded = -(-steps // T) * T
        u_s = u[:, :, s0:s1]
        d_s = _view(ws.slab_a, batch, d_inner, steps)
        if bias is not None:
            torch.add(delta[:, :, s0:s1], bias, out=d_s)
        else:
            d_s.copy_(delta[:, :, s0:s1])
        if delta_softplus:
            d_s = F.softplus(d_s)  # no public out= variant; one same-sized allocation that malloc reuses
        du_s = torch.mul(d_s, u_s, out=_view(ws.slab_b, batch, d_inner, steps))
        # Time-major (batch, steps, features): then one step of every chunk is a dense block.  Zero rows
        # pad the last chunk; that is exact, as delta=0 gives decay 1 and input delta*u*B=0, so the state
        # passes through unchanged (padding after softplus on purpose).
        d_t = _transpose_into(d_s, _view(ws.time_a, batch, padded, d_inner))
        du_t = _transpose_into(du_s, _view(ws.time_b, batch, padded, d_inner))
        B_t = _transpose_into(B[:, :, s0:s1], _view(ws.b_t, batch, padded, n))
        C_t = _transpose_into(C[:, :, s0:s1], _view(ws.c_t, batch, padded, n))
        y_t, state = _scan_segment_in_place(ws, d_t, du_t, B_t, C_t, A2, T, state)
        y_s = _view(ws.slab_a, batch, d_inner, steps)  # delta slab no longer needed
        for i in range(batch):
            # 2-D .t() of a contiguous matrix takes torch's cache-blocked transpose copy; the generic
            # permuted copy in this direction was ~5x slower.
            y_s[i].copy_(y_t[i, :steps].t())
        if Dc is not None:
            y_s.addcmul_(Dc, u_s)
        if z is not None:
            gate = torch.sigmoid(z[:, :, s0:s1], out=_view(ws.slab_b, batch, d_inner, steps))
            y_s.mul_(gate.mul_(z[:, :, s0:s1]))  # silu(z) = z * sigmoid(z)
        out[:, :, s0:s1] = y_s
    return out


def _view(buf: Tensor, *shape: int) -> Tensor:
    """Contiguous view of the first prod(shape) elements of a flat workspace buffer."""
    return buf[: math.prod(shape)].view(shape)


def _transpose_into(src: Tensor, dst: Tensor) -> Tensor:
    """dst[:, :L] = src.transpose(1, 2) for src (b, F, L), dst (b, L_padded, F); zero the padding rows."""
    steps = src.shape[2]
    for i in range(src.shape[0]):
        dst[i, :steps].copy_(src[i].t())
    if dst.shape[1] > steps:
        dst[:, steps:].zero_()
    return dst


class _Workspace:
    """Buffers for one call of the no-grad path, sized for a full segment and reused by every segment."""

    def __init__(self, batch: int, d_inner: int, n: int, seg: int, T: int, dtype: torch.dtype,
                 device: torch.device) -> None:
        def buf(numel: int) -> Tensor:
            return torch.empty(numel, dtype=dtype, device=device)

        chunks = seg // T
        self.slab_a, self.slab_b = buf(batch * d_inner * seg), buf(batch * d_inner * seg)
        self.time_a, self.time_b, self.y_t = (buf(batch * seg * d_inner) for _ in range(3))
        self.b_t, self.c_t = buf(batch * seg * n), buf(batch * seg * n)
        self.y_step = buf(batch * seg * d_inner)
        self.decay, self.h = buf(batch * chunks * n * d_inner), buf(batch * chunks * n * d_inner)


def _entry_states(delta: Tensor, A2: Tensor, h_local_end: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
    """States entering every chunk of a segment, and the state leaving the segment.

    delta: (b, c, T, d); A2 = A * log2(e) transposed, (N, d); h_local_end: (b, c, N, d) chunk-end states of
    the zero-started local scans; state: (b, 1, N, d) entering the segment.  A chunk's total decay is
    exp(A * sum(delta)) because A is time-invariant; it lies in [0, 1], so this short loop is stable.
    """
    chunk_decay = torch.exp2(delta.sum(2).unsqueeze(-2) * A2)  # (b, c, N, d)
    entries = []
    for c in range(delta.shape[1]):
        entries.append(state)
        state = torch.addcmul(h_local_end[:, c : c + 1], chunk_decay[:, c : c + 1], state)
    return torch.cat(entries, dim=1), state


def _scan_segment_in_place(ws: _Workspace, delta: Tensor, du: Tensor, B: Tensor, C: Tensor, A2: Tensor,
                           T: int, state: Tensor) -> tuple[Tensor, Tensor]:
    """Scan one segment; delta/du: (b, steps, d), B/C: (b, steps, N), state: (b, 1, N, d).

    Returns y (b, steps, d) (a view of ``ws.y_t``) and the state after the segment.  Works in two small
    state buffers, (b, chunks, N, d), and recomputes exp(delta * A) in both passes instead of storing the
    segment's (steps, N, d) decays: on CPU this is memory-bound, and keeping the working set to a few MB
    beat the store-and-reread variant by ~25-40% even with twice the exponentials.
    """
    batch, steps, d_inner = delta.shape
    chunks, n = steps // T, A2.shape[0]
    m = batch * chunks
    decay, h = _view(ws.decay, batch, chunks, n, d_inner), _view(ws.h, batch, chunks, n, d_inner)
    delta = delta.view(batch, chunks, T, d_inner)
    # Per-step views, made once: step t of every chunk of the segment.
    delta_t = delta.unsqueeze(-2).unbind(2)  # T x (b, c, 1, d)
    du_t = du.view(batch, chunks, T, 1, d_inner).unbind(2)  # T x (b, c, 1, d)
    B_t = B.view(batch, chunks, T, n, 1).unbind(2)  # T x (b, c, N, 1)

    def step(t: int) -> None:
        # h = exp(delta_t * A) * h + delta_t * u_t * B_t, for all chunks at once.
        torch.mul(delta_t[t], A2, out=decay)
        decay.exp2_()
        h.mul_(decay).addcmul_(du_t[t], B_t[t])

    if chunks > 1:
        # (1) zero-started local scans of all chunks; only the chunk-end states are kept.
        h.zero_()
        for t in range(T):
            step(t)
        # (2) true chunk-entry states (short sequential loop over chunks).
        entry, state = _entry_states(delta, A2, h, state)
        h.copy_(entry)
    else:
        h.copy_(state)
    # (3) rerun the recurrence from the true entry states; y_t = C_t . h_t as a batched (1, N) @ (N, d).
    C_t = C.view(batch, chunks, T, n).permute(2, 0, 1, 3).reshape(T, m, 1, n)
    y_step = _view(ws.y_step, T, m, 1, d_inner)
    h_mat = h.view(m, n, d_inner)
    for t in range(T):
        step(t)
        torch.bmm(C_t[t], h_mat, out=y_step[t])
    if chunks == 1:
        state = h.clone()
    # (T, b*c, 1, d) -> (b, c, T, d) = (b, steps, d); whole d-rows move, so this copy is cheap.
    y = _view(ws.y_t, batch, chunks, T, d_inner)
    y.copy_(y_step.view(T, batch, chunks, d_inner).permute(1, 2, 0, 3))
    return y.view(batch, steps, d_inner), state


def _scan_autograd(u: Tensor, delta: Tensor, A2: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                   z: Tensor | None, delta_bias: Tensor | None, delta_softplus: bool, T: int, seg: int,
                   dtype: torch.dtype) -> Tensor:
    """Training path: the same algorithm with out-of-place ops only, differentiated by autograd."""
    batch, d_inner, length = u.shape
    n = A2.shape[0]
    state = u.new_zeros(batch, 1, n, d_inner, dtype=dtype)
    parts = []
    for s0 in range(0, length, seg):
        s1 = min(length, s0 + seg)
        d_s = delta[:, :, s0:s1].to(dtype)
        if delta_bias is not None:
            d_s = d_s + delta_bias.to(dtype)[:, None]
        if delta_softplus:
            d_s = F.softplus(d_s)
        u_s = u[:, :, s0:s1].to(dtype)
        slabs = (d_s, d_s * u_s, B[:, :, s0:s1].to(dtype), C[:, :, s0:s1].to(dtype))
        pad = -(s1 - s0) % T  # zero padding is exact, see _scan_no_grad
        d_t, du_t, B_t, C_t = (F.pad(x, (0, pad)).transpose(1, 2) for x in slabs)
        y_t, state = _scan_segment_autograd(d_t, du_t, B_t, C_t, A2, T, state)
        y_s = y_t.transpose(1, 2)[:, :, : s1 - s0]
        if D is not None:
            y_s = y_s + D.to(dtype)[:, None] * u_s
        if z is not None:
            y_s = y_s * F.silu(z[:, :, s0:s1].to(dtype))
        parts.append(y_s)
    return (torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]).to(u.dtype)


def _scan_segment_autograd(delta: Tensor, du: Tensor, B: Tensor, C: Tensor, A2: Tensor, T: int,
                           state: Tensor) -> tuple[Tensor, Tensor]:
    """Out-of-place twin of :func:`_scan_segment_in_place` (storing the decays, as autograd keeps them
    for the backward pass anyway)."""
    batch, steps, d_inner = delta.shape
    chunks, n = steps // T, A2.shape[0]
    delta, du = delta.reshape(batch, chunks, T, d_inner), du.reshape(batch, chunks, T, d_inner)
    B, C = B.reshape(batch, chunks, T, n), C.reshape(batch, chunks, T, n)
    decay = torch.exp2(delta.unsqueeze(-2) * A2).unbind(2)  # T x (b, c, N, d)
    inp = (du.unsqueeze(-2) * B.unsqueeze(-1)).unbind(2)  # T x (b, c, N, d)
    if chunks > 1:
        h = inp[0]
        for t in range(1, T):
            h = torch.addcmul(inp[t], decay[t], h)
        entry, exit_state = _entry_states(delta, A2, h, state)
    else:
        entry = state
    ys = []
    h = entry
    for t in range(T):
        h = torch.addcmul(inp[t], decay[t], h)
        ys.append(torch.matmul(C[:, :, t].unsqueeze(-2), h).squeeze(-2))  # (b, c, d)
    y = torch.stack(ys, dim=2).view(batch, steps, d_inner)
    return y, (exit_state if chunks > 1 else h)
