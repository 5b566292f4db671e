"""Find a head's landmarks from its geometry and its ARKit targets, so any ARKit-rigged head gets them.

- lips: on the mid-sagittal plane, jawOpen splits the lips into the part that drops with the jaw and the part
  that stays; the upper-lip centre is the front-most of the staying part's lowest vertices, the lower-lip
  centre the front-most of the dropping part's highest ones (within a millimetre band, so an inner-mouth
  vertex never wins);
- mouth corners: the left- and right-most skin vertices that mouthClose moves by at least a third of its
  largest motion (the lips' seam ends where the closing motion fades);
- chin: the front-most mid-plane vertex that the jaw carries at least 2 cm below the lower lip;
- nose tip: the front-most mid-plane vertex between the eyes and the mouth;
- eyelids: eyeBlink{Left,Right}'s largest motion is the upper lid's centre; the lower lid's centre is the
  still vertex nearest to where that vertex lands when the eye is shut.
"""

from __future__ import annotations

import numpy as np

_MID_PLANE = 1e-5  # metres: |x| below this is on the mid-sagittal plane
_BAND = 0.001  # metres


def _skin(head) -> np.ndarray:
    a, b = head.parts.get("skin", [0, head.vertex_count])
    mask = np.zeros(head.vertex_count, dtype=bool)
    mask[a:b] = True
    return mask


def find_landmarks(head) -> dict[str, int]:
    """Named vertex indices of `head` (a HeadAsset with ARKit blendshape names)."""
    v = head.neutral
    skin = _skin(head)
    jaw = np.linalg.norm(head.blendshape("jawOpen"), axis=1)
    mid = skin & (np.abs(v[:, 0]) < _MID_PLANE)
    close = np.linalg.norm(head.blendshape("mouthClose"), axis=1)
    lips = mid & (close > 0.2 * close.max())
    dropping = lips & (jaw > 0.5 * jaw.max())
    staying = lips & (jaw < 0.1 * jaw.max())
    upper_low = np.flatnonzero(staying & (v[:, 1] < v[staying, 1].min() + _BAND))
    lower_high = np.flatnonzero(dropping & (v[:, 1] > v[dropping, 1].max() - _BAND))
    lip_upper = int(upper_low[np.argmax(v[upper_low, 2])])
    lip_lower = int(lower_high[np.argmax(v[lower_high, 2])])

    seam = np.flatnonzero(skin & (close > close.max() / 3))
    corner_left = int(seam[np.argmax(v[seam, 0])])
    corner_right = int(seam[np.argmin(v[seam, 0])])

    carried = np.flatnonzero(mid & (jaw > 0.5 * jaw.max()) & (v[:, 1] < v[lip_lower, 1] - 0.02))
    chin = int(carried[np.argmax(v[carried, 2])])

    marks = {"lip_upper": lip_upper, "lip_lower": lip_lower, "mouth_corner_left": corner_left,
             "mouth_corner_right": corner_right, "chin": chin}
    for side, name in (("left", "eyeBlinkLeft"), ("right", "eyeBlinkRight")):
        blink = head.blendshape(name)
        moved = np.linalg.norm(blink, axis=1)
        upper = int(np.argmax(np.where(skin, moved, 0.0)))
        shut = v[upper] + blink[upper]
        still = np.flatnonzero(skin & (moved < 0.1 * moved.max()))
        lower = int(still[np.argmin(np.linalg.norm(v[still] - shut, axis=1))])
        marks[f"eye_{side}_upper"], marks[f"eye_{side}_lower"] = upper, lower
    eye_y = 0.5 * (v[marks["eye_left_upper"], 1] + v[marks["eye_right_upper"], 1])
    between = np.flatnonzero(mid & (v[:, 1] < eye_y) & (v[:, 1] > v[lip_upper, 1]))
    marks["nose_tip"] = int(between[np.argmax(v[between, 2])])
    return marks
