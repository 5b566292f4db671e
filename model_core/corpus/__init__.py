"""The training corpus of real and synthetic voices on a blendshape head (ARKit-52 truth).

voices (festival, flite, asterisk prompts, our formant voice) -> timed phones (exact or force-aligned)
-> ARKit weights per frame (coarticulation) -> takes on disk. Vertices are computed from the head on the fly.
Never imports training code.
"""
