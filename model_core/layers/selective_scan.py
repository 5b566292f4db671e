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
The sequence is cut into *segments* of ``segment_len`` steps (only one segment's worth of
``(batch, d_inner, L, N)``-sized temporaries is alive at a time, so memory does not grow with L) and
every segment into *chunks* of ``chunk_size`` steps.  Per segment:

1. the recurrence runs inside every chunk from a zero state, one loop of ``chunk_size`` steps that is
   vectorised over all chunks of the segment at once, contracting with ``C`` on the fly;
2. a loop over the chunks propagates the true chunk-entry states; the decay over a whole chunk is
   ``exp(A * sum(delta over the chunk))`` because ``A`` does not depend on time;
3. the entry state's contribution ``C_t . (exp(A * cumsum_in_chunk(delta)_t) * H_entry)`` is added.

Every factor is an ``exp`` of a non-positive number (a decay in [0, 1]); nothing is ever divided by a
cumulative decay, so ``delta * A`` of -100 or -1000 per step only underflows harmlessly to 0.
The number of Python iterations per segment is about ``2 * chunk_size + segment_len / chunk_size``.

Autograd flows through the ordinary tensor ops (no custom backward), so gradients are those of the
same maths; when gradients are needed the loop avoids in-place updates.

Measured on a 2-core AMD EPYC (Zen 4) VM, torch 2.13 CPU, float32, ``torch.no_grad()``,
batch=1, d_inner=1024, N=16 (see the report in the tests' docstring for the method):
MEASUREMENTS_PLACEHOLDER
"""

from __future__ import annotations

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
    dtype = _compute_dtype(u, delta, A, B, C)
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
    chunk_size: int = 32,
    segment_len: int = 2048,
) -> Tensor:
    """Chunked selective scan; same maths and result as :func:`selective_scan_reference`, fast on CPU.

    ``chunk_size`` is the length of the independently scanned chunks; ``segment_len`` (rounded down to
    a multiple of ``chunk_size``, at least one chunk) bounds the temporaries to
    O(batch * d_inner * segment_len * N) elements regardless of L.  Differentiable (plain autograd).
    """
    _check_shapes(u, delta, A, B, C, D, z, delta_bias)
    if chunk_size < 1 or segment_len < 1:
        raise ValueError("chunk_size and segment_len must be positive")
    dtype = _compute_dtype(u, delta, A, B, C)
    batch, d_inner, length = u.shape
    n = A.shape[1]
    if length == 0:
        return u.new_zeros(batch, d_inner, 0)

    T = min(chunk_size, length)  # no point in a chunk longer than the sequence
    seg = min(max(1, segment_len // T), -(-length // T)) * T  # steps per segment, a multiple of T
    # exp(x) == exp2(x * log2(e)); torch's exp2 is ~2.7x faster than exp on CPU and the exponentials are
    # the single most expensive step.  A is stored transposed, (N, d_inner), so that every state-sized
    # tensor is (..., N, d_inner) with the long d_inner axis contiguous (vectorises better than N=16).
    A2 = (A.to(dtype) * _LOG2E).t().contiguous()
    bias = delta_bias.to(dtype)[:, None] if delta_bias is not None else None
    Dc = D.to(dtype)[:, None] if D is not None else None

    need_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (u, delta, A, B, C, D, z, delta_bias)
    )
    if need_grad:
        scan = _scan_segment_autograd
        parts: list[Tensor] = []
    else:
        scan = _ScanSegmentInplace(T, batch, seg // T, d_inner, n, dtype, u.device)
        out = torch.empty(batch, d_inner, length, dtype=u.dtype, device=u.device)

    # Everything, including the delta preprocessing and the D/z epilogue, is done one segment at a time:
    # the slabs stay cache-sized (the layout transposes are much cheaper there) and no extra
    # (batch, d_inner, L) temporaries are allocated (first-touch page faults on those cost ~50 ms each).
    state = u.new_zeros(batch, 1, n, d_inner, dtype=dtype)  # state entering the current segment
    for s0 in range(0, length, seg):
        s1 = min(length, s0 + seg)
        d_s = delta[:, :, s0:s1].to(dtype)
        if bias is not None:
            d_s = d_s + bias
        if delta_softplus:
            d_s = F.softplus(d_s)
        u_s = u[:, :, s0:s1].to(dtype)
        du_s = d_s * u_s
        B_s, C_s = B[:, :, s0:s1].to(dtype), C[:, :, s0:s1].to(dtype)
        pad = -(s1 - s0) % T
        if pad:
            # Zero padding is exact: delta=0 gives decay exp(0)=1 and input delta*u*B=0, so the state
            # passes through the padded steps unchanged (applied after softplus on purpose).
            d_s, du_s, B_s, C_s = (F.pad(x, (0, pad)) for x in (d_s, du_s, B_s, C_s))
        # Time-major (batch, steps, features) slabs: a step of every chunk is then a dense block.
        y_t, state = scan(*(x.transpose(1, 2).contiguous() for x in (d_s, du_s, B_s, C_s)), A2, T, state)
        y_s = _transpose_back(y_t)[:, :, : s1 - s0]  # (batch, d_inner, steps)
        if need_grad:
            if Dc is not None:
                y_s = y_s + Dc * u_s
            if z is not None:
                y_s = y_s * F.silu(z[:, :, s0:s1].to(dtype))
            parts.append(y_s)
        else:
            if Dc is not None:
                y_s.addcmul_(Dc, u_s)
            if z is not None:
                y_s.mul_(F.silu(z[:, :, s0:s1].to(dtype)))
            out[:, :, s0:s1] = y_s
    if need_grad:
        return (torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]).to(u.dtype)
    return out


_LOG2E = 1.4426950408889634


def _transpose_back(y: Tensor) -> Tensor:
    """(batch, steps, d) -> contiguous (batch, d, steps).

    Done per batch row as a 2-D ``.t().contiguous()``, which hits torch's cache-blocked transpose copy;
    the generic 3-D permuted copy in this direction is ~5x slower.
    """
    if y.shape[0] == 1:
        return y[0].t().contiguous().unsqueeze(0)
    return torch.stack([row.t().contiguous() for row in y.unbind(0)])


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


def _scan_segment_autograd(delta: Tensor, du: Tensor, B: Tensor, C: Tensor, A2: Tensor, T: int,
                           state: Tensor) -> tuple[Tensor, Tensor]:
    """Out-of-place twin of :class:`_ScanSegmentInplace` so that autograd can differentiate it."""
    batch, steps, d_inner = delta.shape
    chunks, n = steps // T, A2.shape[0]
    delta, du = delta.view(batch, chunks, T, d_inner), du.view(batch, chunks, T, d_inner)
    B, C = B.view(batch, chunks, T, n), C.view(batch, chunks, T, n)
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


class _ScanSegmentInplace:
    """No-grad segment scan that reuses two segment-sized buffers across segments.

    Allocating fresh multi-megabyte tensors per op costs page faults that dominated the run time, so
    every state-sized intermediate is written with ``out=`` / in place into preallocated storage.
    """

    def __init__(self, T: int, batch: int, chunks: int, d_inner: int, n: int, dtype: torch.dtype,
                 device: torch.device) -> None:
        self.decay = torch.empty(T * batch * chunks * n * d_inner, dtype=dtype, device=device)
        self.states = torch.empty_like(self.decay)

    def __call__(self, delta: Tensor, du: Tensor, B: Tensor, C: Tensor, A2: Tensor, T: int,
                 state: Tensor) -> tuple[Tensor, Tensor]:
        batch, steps, d_inner = delta.shape
        chunks, n = steps // T, A2.shape[0]
        shape = (batch, chunks, T, n, d_inner)
        size = batch * steps * n * d_inner  # the last segment may use only a prefix of the buffers
        decay = self.decay[:size].view(shape)
        states = self.states[:size].view(shape)
        delta = delta.view(batch, chunks, T, d_inner)
        torch.mul(delta.unsqueeze(-2), A2, out=decay)
        torch.exp2(decay, out=decay)
        # Inputs delta*u*B; overwritten by the states in (3).
        torch.mul(du.view(batch, chunks, T, 1, d_inner), B.view(batch, chunks, T, n, 1), out=states)
        dec, st = decay.unbind(2), states.unbind(2)  # T x (b, c, N, d) views, made once
        if chunks > 1:
            # (1) zero-started local scans of all chunks at once; only the chunk-end state is needed.
            h = st[0].clone()
            for t in range(1, T):
                torch.addcmul(st[t], dec[t], h, out=h)
            # (2) true chunk-entry states.
            entry, state = _entry_states(delta, A2, h, state)
        else:
            entry = state
        # (3) rerun the recurrence from the true entry states, overwriting the inputs with the states.
        st[0].addcmul_(dec[0], entry)
        for t in range(1, T):
            st[t].addcmul_(dec[t], st[t - 1])
        if chunks == 1:
            state = st[T - 1].clone()
        # y_t = sum_n C_t[n] h_t[n, :] for the whole segment as one batched (1, N) @ (N, d) product.
        m = batch * steps
        y = torch.bmm(C.reshape(m, 1, n), states.view(m, n, d_inner))
        return y.view(batch, steps, d_inner), state
