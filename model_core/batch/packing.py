"""Which lines share a batched forward pass: similar lengths together, so little of a pass is padding."""

from __future__ import annotations


def pack_batches(lengths: list[int], max_lines: int, max_padded: int) -> list[list[int]]:
    """Indices of `lengths` (samples) in groups of at most `max_lines`, each costing at most `max_padded` samples
    once padded to its longest member (a longer line goes alone). Shortest first; every index exactly once."""
    if max_lines < 1 or max_padded < 1:
        raise ValueError("A batch needs room for at least one line.")
    batches: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        # Sorted ascending, so the newcomer is the longest: the padded cost is its length times the count.
        if current and (len(current) == max_lines or lengths[index] * (len(current) + 1) > max_padded):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches
