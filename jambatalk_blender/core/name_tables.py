"""Shape-key naming conventions the name matcher knows, as data (see `names.py` for the logic).

Pure module (standard library only). Every table maps an ARKit channel to the key or keys it drives on a mesh
in that convention; an entry is a key name, or ``(key name, factor)`` when the channel should drive the key at
something other than full weight. Several keys under one channel means one ARKit channel drives all of them
(e.g. mouthFunnel -> the four lip-quadrant funnel shapes). Channels a convention has no shape for are left out.
The matcher compares these names to the mesh's keys both verbatim and after `names.normalise`, so a table
written as ``Brow_Lowerer_L`` also finds ``BrowLowererL`` or ``BROW_LOWERER_L``.

The tables are facts about other tools' naming, gathered from their documentation and source (each table says
where); they hold names only, no code or prose from those projects.
"""

from __future__ import annotations

from collections.abc import Mapping

# Apple ARKit, ARFaceAnchor.BlendShapeLocation (developer.apple.com/documentation/arkit/arfaceanchor/
# blendshapelocation), in the order of Apple's page: left eye, right eye, mouth and jaw, eyebrows, cheeks,
# nose, tongue. Ready Player Me, Faceit's ARKit set, NVIDIA Audio2Face and VRM "Perfect Sync" models use these
# names verbatim; Live Link Face / Unity use the same names capitalised, and FaceCap/Rokoko-style rigs write
# the side as _L/_R (eyeBlink_L): both reduce to these names under `names.normalise`.
ARKIT_52: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight",
    "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft",
    "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft",
    "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)

TableEntry = str | tuple[str, float]
Table = Mapping[str, tuple[TableEntry, ...]]

# Character Creator 4 / iClone 8 "CC4 Extended" facial profile (CC3+ base, the default for CC4 characters).
# Key names and their ARKit correspondence as used by Reallusion's own bridge tools: the Extended column of
# FacialProfileMapper in CC_Unity_Tools and the expression names in CC/iC Blender Tools' facerig_data.py
# (github.com/soupday). One ARKit channel drives both halves or all four lip quadrants where CC4 splits it.
# mouthRoll*: ARKit rolls the lip in over the teeth, which is CC4's Mouth_Roll_In_* (the Roll_Out_* shapes
# pout the lip outward); one older CC_Unity_Tools table pairs ARKit's roll with Roll_Out, the Blender face rig
# drives Roll_In for "lips roll in", which is what we follow.
CC4_EXTENDED: dict[str, tuple[TableEntry, ...]] = {
    "browInnerUp": ("Brow_Raise_Inner_L", "Brow_Raise_Inner_R"),
    "browDownLeft": ("Brow_Drop_L",),
    "browDownRight": ("Brow_Drop_R",),
    "browOuterUpLeft": ("Brow_Raise_Outer_L",),
    "browOuterUpRight": ("Brow_Raise_Outer_R",),
    "eyeLookUpLeft": ("Eye_L_Look_Up",),
    "eyeLookUpRight": ("Eye_R_Look_Up",),
    "eyeLookDownLeft": ("Eye_L_Look_Down",),
    "eyeLookDownRight": ("Eye_R_Look_Down",),
    "eyeLookOutLeft": ("Eye_L_Look_L",),  # the left eye turning to the face's left = outward
    "eyeLookInLeft": ("Eye_L_Look_R",),
    "eyeLookInRight": ("Eye_R_Look_L",),
    "eyeLookOutRight": ("Eye_R_Look_R",),
    "eyeBlinkLeft": ("Eye_Blink_L",),
    "eyeBlinkRight": ("Eye_Blink_R",),
    "eyeSquintLeft": ("Eye_Squint_L",),
    "eyeSquintRight": ("Eye_Squint_R",),
    "eyeWideLeft": ("Eye_Wide_L",),
    "eyeWideRight": ("Eye_Wide_R",),
    "cheekPuff": ("Cheek_Puff_L", "Cheek_Puff_R"),
    "cheekSquintLeft": ("Cheek_Raise_L",),
    "cheekSquintRight": ("Cheek_Raise_R",),
    "noseSneerLeft": ("Nose_Sneer_L",),
    "noseSneerRight": ("Nose_Sneer_R",),
    "jawOpen": ("Jaw_Open",),
    "jawForward": ("Jaw_Forward",),
    "jawLeft": ("Jaw_L",),
    "jawRight": ("Jaw_R",),
    "mouthFunnel": ("Mouth_Funnel_Up_L", "Mouth_Funnel_Up_R", "Mouth_Funnel_Down_L", "Mouth_Funnel_Down_R"),
    "mouthPucker": ("Mouth_Pucker_Up_L", "Mouth_Pucker_Up_R", "Mouth_Pucker_Down_L", "Mouth_Pucker_Down_R"),
    "mouthLeft": ("Mouth_L",),
    "mouthRight": ("Mouth_R",),
    "mouthRollUpper": ("Mouth_Roll_In_Upper_L", "Mouth_Roll_In_Upper_R"),
    "mouthRollLower": ("Mouth_Roll_In_Lower_L", "Mouth_Roll_In_Lower_R"),
    "mouthShrugUpper": ("Mouth_Shrug_Upper",),
    "mouthShrugLower": ("Mouth_Shrug_Lower",),
    "mouthClose": ("Mouth_Close",),
    "mouthSmileLeft": ("Mouth_Smile_L",),
    "mouthSmileRight": ("Mouth_Smile_R",),
    "mouthFrownLeft": ("Mouth_Frown_L",),
    "mouthFrownRight": ("Mouth_Frown_R",),
    "mouthDimpleLeft": ("Mouth_Dimple_L",),
    "mouthDimpleRight": ("Mouth_Dimple_R",),
    "mouthUpperUpLeft": ("Mouth_Up_Upper_L",),
    "mouthUpperUpRight": ("Mouth_Up_Upper_R",),
    "mouthLowerDownLeft": ("Mouth_Down_Lower_L",),
    "mouthLowerDownRight": ("Mouth_Down_Lower_R",),
    "mouthPressLeft": ("Mouth_Press_L",),
    "mouthPressRight": ("Mouth_Press_R",),
    "mouthStretchLeft": ("Mouth_Stretch_L",),
    "mouthStretchRight": ("Mouth_Stretch_R",),
    "tongueOut": ("Tongue_Out",),
}

# Character Creator 3+ "ARKit" expression set (CC3+ with the ExPlus/ARKit profile): the 52 ARKit shapes numbered
# A01..A52 in Reallusion's order. Names from CC_Unity_Tools' FacialProfileMapper (ExPlus column) and, matching
# them name for name, Meta's Movement SDK ARKitFace.cs, which drives CC3 ARKit characters. Every name reduces
# to its ARKit channel under `names.normalise` (the Axx_ prefix is stripped); the table names the convention.
CC3_ARKIT: dict[str, tuple[TableEntry, ...]] = {
    "browInnerUp": ("A01_Brow_Inner_Up",),
    "browDownLeft": ("A02_Brow_Down_Left",),
    "browDownRight": ("A03_Brow_Down_Right",),
    "browOuterUpLeft": ("A04_Brow_Outer_Up_Left",),
    "browOuterUpRight": ("A05_Brow_Outer_Up_Right",),
    "eyeLookUpLeft": ("A06_Eye_Look_Up_Left",),
    "eyeLookUpRight": ("A07_Eye_Look_Up_Right",),
    "eyeLookDownLeft": ("A08_Eye_Look_Down_Left",),
    "eyeLookDownRight": ("A09_Eye_Look_Down_Right",),
    "eyeLookOutLeft": ("A10_Eye_Look_Out_Left",),
    "eyeLookInLeft": ("A11_Eye_Look_In_Left",),
    "eyeLookInRight": ("A12_Eye_Look_In_Right",),
    "eyeLookOutRight": ("A13_Eye_Look_Out_Right",),
    "eyeBlinkLeft": ("A14_Eye_Blink_Left",),
    "eyeBlinkRight": ("A15_Eye_Blink_Right",),
    "eyeSquintLeft": ("A16_Eye_Squint_Left",),
    "eyeSquintRight": ("A17_Eye_Squint_Right",),
    "eyeWideLeft": ("A18_Eye_Wide_Left",),
    "eyeWideRight": ("A19_Eye_Wide_Right",),
    "cheekPuff": ("A20_Cheek_Puff",),
    "cheekSquintLeft": ("A21_Cheek_Squint_Left",),
    "cheekSquintRight": ("A22_Cheek_Squint_Right",),
    "noseSneerLeft": ("A23_Nose_Sneer_Left",),
    "noseSneerRight": ("A24_Nose_Sneer_Right",),
    "jawOpen": ("A25_Jaw_Open",),
    "jawForward": ("A26_Jaw_Forward",),
    "jawLeft": ("A27_Jaw_Left",),
    "jawRight": ("A28_Jaw_Right",),
    "mouthFunnel": ("A29_Mouth_Funnel",),
    "mouthPucker": ("A30_Mouth_Pucker",),
    "mouthLeft": ("A31_Mouth_Left",),
    "mouthRight": ("A32_Mouth_Right",),
    "mouthRollUpper": ("A33_Mouth_Roll_Upper",),
    "mouthRollLower": ("A34_Mouth_Roll_Lower",),
    "mouthShrugUpper": ("A35_Mouth_Shrug_Upper",),
    "mouthShrugLower": ("A36_Mouth_Shrug_Lower",),
    "mouthClose": ("A37_Mouth_Close",),
    "mouthSmileLeft": ("A38_Mouth_Smile_Left",),
    "mouthSmileRight": ("A39_Mouth_Smile_Right",),
    "mouthFrownLeft": ("A40_Mouth_Frown_Left",),
    "mouthFrownRight": ("A41_Mouth_Frown_Right",),
    "mouthDimpleLeft": ("A42_Mouth_Dimple_Left",),
    "mouthDimpleRight": ("A43_Mouth_Dimple_Right",),
    "mouthUpperUpLeft": ("A44_Mouth_Upper_Up_Left",),
    "mouthUpperUpRight": ("A45_Mouth_Upper_Up_Right",),
    "mouthLowerDownLeft": ("A46_Mouth_Lower_Down_Left",),
    "mouthLowerDownRight": ("A47_Mouth_Lower_Down_Right",),
    "mouthPressLeft": ("A48_Mouth_Press_Left",),
    "mouthPressRight": ("A49_Mouth_Press_Right",),
    "mouthStretchLeft": ("A50_Mouth_Stretch_Left",),
    "mouthStretchRight": ("A51_Mouth_Stretch_Right",),
    "tongueOut": ("A52_Tongue_Out",),
}

# MPFB2 (MakeHuman for Blender) "face units": the faceunits01 asset pack's 52 ARKit targets, loaded as shape keys
# named "!ex-" + the ARKit name (TargetService.expression_name_to_shapekey_name and docs/expression.md in
# github.com/makehumancommunity/mpfb2; older MPFB releases loaded them under the bare ARKit name, which the
# name matcher finds anyway). `names.normalise` strips the "!ex-" prefix; the table names the convention.
MPFB2_FACE_UNITS: dict[str, tuple[TableEntry, ...]] = {name: ("!ex-" + name,) for name in ARKIT_52}


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


# VRCFaceTracking "Unified Expressions" avatar shapes (docs.vrcft.io; tables in github.com/VRCFaceTracking/docs:
# compatibility/arkit.mdx, compatibility/overview.mdx and _unified-blended-table.mdx). Where ARKit's shape is a
# Unified "blended" shape, the channel drives the base shapes it blends (e.g. mouthSmileLeft -> corner pull and
# corner slant); an avatar that has the blended shape itself under the ARKit-like name (BrowInnerUp, CheekPuff,
# MouthSmileLeft ...) is matched by name before any table is consulted.
UNIFIED_EXPRESSIONS: dict[str, tuple[TableEntry, ...]] = {name: (_pascal(name),) for name in ARKIT_52} | {
    "eyeBlinkLeft": ("EyeClosedLeft",),
    "eyeBlinkRight": ("EyeClosedRight",),
    "browDownLeft": ("BrowLowererLeft", "BrowPinchLeft"),
    "browDownRight": ("BrowLowererRight", "BrowPinchRight"),
    "browInnerUp": ("BrowInnerUpLeft", "BrowInnerUpRight"),
    "cheekPuff": ("CheekPuffLeft", "CheekPuffRight"),
    "mouthClose": ("MouthClosed",),
    "mouthRollUpper": ("LipSuckUpperLeft", "LipSuckUpperRight"),
    "mouthRollLower": ("LipSuckLowerLeft", "LipSuckLowerRight"),
    "mouthFunnel": ("LipFunnelUpperLeft", "LipFunnelUpperRight", "LipFunnelLowerLeft", "LipFunnelLowerRight"),
    "mouthPucker": ("LipPuckerUpperLeft", "LipPuckerUpperRight", "LipPuckerLowerLeft", "LipPuckerLowerRight"),
    "mouthLeft": ("MouthUpperLeft", "MouthLowerLeft"),
    "mouthRight": ("MouthUpperRight", "MouthLowerRight"),
    "mouthSmileLeft": ("MouthCornerPullLeft", "MouthCornerSlantLeft"),
    "mouthSmileRight": ("MouthCornerPullRight", "MouthCornerSlantRight"),
    "mouthShrugUpper": ("MouthRaiserUpper",),
    "mouthShrugLower": ("MouthRaiserLower",),
}

# Meta Movement SDK face tracking (Quest Pro; OVRFaceExpressions.FaceExpression / XrFaceExpression2FB), as
# shape names on an avatar rigged to Meta's expressions. One-to-one pairs from Meta's own ARKitFace.cs
# (Oculus.Movement.Tracking, which drives ARKit-named characters from these expressions); the split of
# bilateral ARKit shapes into Meta's left/right or lip-quadrant expressions from the VRCFT comparison tables
# (compatibility/overview.mdx, meta-movement.mdx). "L"/"R" are the face's own sides, as in ARKit.
META_MOVEMENT: dict[str, tuple[TableEntry, ...]] = {
    "eyeBlinkLeft": ("EyesClosedL",),
    "eyeLookDownLeft": ("EyesLookDownL",),
    "eyeLookInLeft": ("EyesLookRightL",),
    "eyeLookOutLeft": ("EyesLookLeftL",),
    "eyeLookUpLeft": ("EyesLookUpL",),
    "eyeSquintLeft": ("LidTightenerL",),
    "eyeWideLeft": ("UpperLidRaiserL",),
    "eyeBlinkRight": ("EyesClosedR",),
    "eyeLookDownRight": ("EyesLookDownR",),
    "eyeLookInRight": ("EyesLookLeftR",),
    "eyeLookOutRight": ("EyesLookRightR",),
    "eyeLookUpRight": ("EyesLookUpR",),
    "eyeSquintRight": ("LidTightenerR",),
    "eyeWideRight": ("UpperLidRaiserR",),
    "jawForward": ("JawThrust",),
    "jawLeft": ("JawSidewaysLeft",),
    "jawRight": ("JawSidewaysRight",),
    "jawOpen": ("JawDrop",),
    "mouthClose": ("LipsToward",),
    "mouthFunnel": ("LipFunnelerLT", "LipFunnelerRT", "LipFunnelerLB", "LipFunnelerRB"),
    "mouthPucker": ("LipPuckerL", "LipPuckerR"),
    "mouthLeft": ("MouthLeft",),
    "mouthRight": ("MouthRight",),
    "mouthSmileLeft": ("LipCornerPullerL",),
    "mouthSmileRight": ("LipCornerPullerR",),
    "mouthFrownLeft": ("LipCornerDepressorL",),
    "mouthFrownRight": ("LipCornerDepressorR",),
    "mouthDimpleLeft": ("DimplerL",),
    "mouthDimpleRight": ("DimplerR",),
    "mouthStretchLeft": ("LipStretcherL",),
    "mouthStretchRight": ("LipStretcherR",),
    "mouthRollLower": ("LipSuckLB", "LipSuckRB"),
    "mouthRollUpper": ("LipSuckLT", "LipSuckRT"),
    "mouthShrugLower": ("ChinRaiserB",),
    "mouthShrugUpper": ("ChinRaiserT",),
    "mouthPressLeft": ("LipPressorL",),
    "mouthPressRight": ("LipPressorR",),
    "mouthLowerDownLeft": ("LowerLipDepressorL",),
    "mouthLowerDownRight": ("LowerLipDepressorR",),
    "mouthUpperUpLeft": ("UpperLipRaiserL",),
    "mouthUpperUpRight": ("UpperLipRaiserR",),
    "browDownLeft": ("BrowLowererL",),
    "browDownRight": ("BrowLowererR",),
    "browInnerUp": ("InnerBrowRaiserL", "InnerBrowRaiserR"),
    "browOuterUpLeft": ("OuterBrowRaiserL",),
    "browOuterUpRight": ("OuterBrowRaiserR",),
    "cheekPuff": ("CheekPuffL", "CheekPuffR"),
    "cheekSquintLeft": ("CheekRaiserL",),
    "cheekSquintRight": ("CheekRaiserR",),
    "noseSneerLeft": ("NoseWrinklerL",),
    "noseSneerRight": ("NoseWrinklerR",),
    "tongueOut": ("TongueOut",),
}

# HTC VIVE SRanipal eye and lip shapes (common on older VRChat face-tracking avatars). ARKit correspondence from
# the VRCFT comparison table (compatibility/overview.mdx) and the SRanipal shape descriptions in the VRCFT v4
# docs (lip-blendshapes). Left out: mouthClose (SRanipal's Mouth_Ape_Shape also opens the jaw, so driving it
# beside Jaw_Open would open the jaw twice), frown/stretch/dimple/press/squint/brows/nose (no SRanipal shape).
SRANIPAL: dict[str, tuple[TableEntry, ...]] = {
    "eyeLookUpLeft": ("Eye_Left_Look_Up",),
    "eyeLookDownLeft": ("Eye_Left_Look_Down",),
    "eyeLookInLeft": ("Eye_Left_Right",),
    "eyeLookOutLeft": ("Eye_Left_Left",),
    "eyeLookUpRight": ("Eye_Right_Look_Up",),
    "eyeLookDownRight": ("Eye_Right_Look_Down",),
    "eyeLookInRight": ("Eye_Right_Left",),
    "eyeLookOutRight": ("Eye_Right_Right",),
    "eyeBlinkLeft": ("Eye_Left_Blink",),
    "eyeBlinkRight": ("Eye_Right_Blink",),
    "eyeWideLeft": ("Eye_Left_Wide",),
    "eyeWideRight": ("Eye_Right_Wide",),
    "cheekPuff": ("Cheek_Puff_Left", "Cheek_Puff_Right"),
    "jawOpen": ("Jaw_Open",),
    "jawLeft": ("Jaw_Left",),
    "jawRight": ("Jaw_Right",),
    "jawForward": ("Jaw_Forward",),
    "mouthRollUpper": ("Mouth_Upper_Inside",),
    "mouthRollLower": ("Mouth_Lower_Inside",),
    "mouthFunnel": ("Mouth_Upper_Overturn", "Mouth_Lower_Overturn"),
    "mouthPucker": ("Mouth_Pout",),
    "mouthLeft": ("Mouth_Upper_Left", "Mouth_Lower_Left"),
    "mouthRight": ("Mouth_Upper_Right", "Mouth_Lower_Right"),
    "mouthUpperUpLeft": ("Mouth_Upper_Up_Left",),
    "mouthUpperUpRight": ("Mouth_Upper_Up_Right",),
    "mouthLowerDownLeft": ("Mouth_Lower_Down_Left",),
    "mouthLowerDownRight": ("Mouth_Lower_Down_Right",),
    "mouthSmileLeft": ("Mouth_Smile_Left",),
    "mouthSmileRight": ("Mouth_Smile_Right",),
    "mouthShrugLower": ("Mouth_Lower_Overlay",),
    "tongueOut": ("Tongue_LongStep1", "Tongue_LongStep2"),
}

# Daz Genesis 9 base-figure FACS morphs ("facs_bs_" + an ARKit-like PascalCase name). Genesis 9 splits several
# ARKit shapes into left/right and upper/lower morphs, which one channel drives together; it has no eye-wide or
# tongue-out blendshape morph. From morph lists and ARKit tables in public Daz scripting projects (one of them
# checked against a Genesis 9 figure's morph list), not from Daz documentation.
_DAZ_SPLIT: dict[str, tuple[str, ...]] = {
    "browInnerUp": ("BrowInnerUpLeft", "BrowInnerUpRight"),
    "cheekPuff": ("CheekPuffLeft", "CheekPuffRight"),
    "mouthClose": ("MouthCloseUpperLeft", "MouthCloseUpperRight", "MouthCloseLowerLeft", "MouthCloseLowerRight"),
    "mouthFunnel": (
        "MouthFunnelUpperLeft", "MouthFunnelUpperRight", "MouthFunnelLowerLeft", "MouthFunnelLowerRight",
    ),
    "mouthPucker": ("MouthPurseUpperLeft", "MouthPurseUpperRight", "MouthPurseLowerLeft", "MouthPurseLowerRight"),
    "mouthPressLeft": ("MouthPressUpperLeft", "MouthPressLowerLeft"),
    "mouthPressRight": ("MouthPressUpperRight", "MouthPressLowerRight"),
    "mouthRollLower": ("MouthRollLowerLeft", "MouthRollLowerRight"),
    "mouthRollUpper": ("MouthRollUpperLeft", "MouthRollUpperRight"),
    "mouthShrugLower": ("MouthShrugLowerLeft", "MouthShrugLowerRight"),
    "mouthShrugUpper": ("MouthShrugUpperLeft", "MouthShrugUpperRight"),
}
DAZ_GENESIS9: dict[str, tuple[TableEntry, ...]] = {
    name: tuple("facs_bs_" + part for part in _DAZ_SPLIT.get(name, (_pascal(name),)))
    for name in ARKIT_52
    if name not in ("eyeWideLeft", "eyeWideRight", "tongueOut")
}

# The conventions in the order ties are broken (most widespread first). The name is what the panel reports.
CONVENTIONS: tuple[tuple[str, Table], ...] = (
    ("Character Creator 4 Extended", CC4_EXTENDED),
    ("Character Creator 3+ ARKit", CC3_ARKIT),
    ("MPFB2 face units", MPFB2_FACE_UNITS),
    ("VRCFT Unified Expressions", UNIFIED_EXPRESSIONS),
    ("Meta Movement face tracking", META_MOVEMENT),
    ("VIVE SRanipal", SRANIPAL),
    ("Daz Genesis 9 FACS", DAZ_GENESIS9),
)
