"""The inference worker: an HTTP service (protocol v1, docs/protocol.md) around model_core's Animator.

The protocol's names (version, parameter header and fields, result headers) are written once, in
jambatalk_blender/core/protocol.py (standard library only), and imported by both the worker and the client.
"""

from jambatalk_blender.core.protocol import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION"]
