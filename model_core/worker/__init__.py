"""The inference worker: an HTTP service (protocol v1, docs/protocol.md) around model_core's Animator."""

PROTOCOL_VERSION = 1
