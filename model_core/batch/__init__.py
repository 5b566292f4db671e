"""`jambatalk batch`: thousands of dialogue lines to animation files, resumable, on one machine or a Ray cluster.

- `manifest.py` — the lines: a folder of audio or a CSV / JSONL manifest, checked before anything runs.
- `packing.py` — which lines share a batched forward pass.
- `state.py` — content fingerprints, the per-output records that make a re-run skip what is done, the lock.
- `runner.py` — `LineRunner`: lines -> output files (one model load per checkpoint), failures isolated per line.
- `local.py` — the local engine: in process, or `--workers N` processes; progress bar; Ctrl-C.
- `ray_engine.py` — the Ray Data engine (`pip install 'jambatalk[scale]'`).
- `report.py` — the summary report (CSV and JSON) and the closing lines on the console.
- `cli.py` — the subcommand's arguments.
"""
