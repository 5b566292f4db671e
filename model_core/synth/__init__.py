"""A synthetic talking-head corpus made entirely by our own code, in the VOCASET (FaceFormer) on-disk layout.

Real capture data (VOCASET, BIWI, FLAME) cannot ship with the project, so `jambatalk synth-corpus` builds a
stand-in deterministically from a seed: a procedural head with articulation blendshapes (`head`,
`blendshapes`), random phoneme timelines (`phonemes`), a source-filter formant voice (`voice`) and
coarticulated mouth motion plus independent blinks and brows (`coarticulation`, `motion`), written by
`corpus`. `measures` holds the lip-gap and jaw-opening measures evaluation uses.
"""
