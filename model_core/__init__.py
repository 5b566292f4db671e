"""JambaTalk model core: the network, checkpoints, inference, worker and command line."""

__version__ = "0.1.0"
