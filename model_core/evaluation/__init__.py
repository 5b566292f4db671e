"""Scoring a checkpoint on real recordings (`jambatalk score-speech`).

`speech_scorecard` holds the measures (pure functions on arrays), `speech_sources` finds and decodes the
recordings, `score_speech` aligns them, runs the model and collects the scorecard.
"""
