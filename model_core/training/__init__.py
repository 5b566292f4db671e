"""Training and evaluation: `jambatalk train CONFIG` and `jambatalk evaluate CHECKPOINT --data DIR`."""
