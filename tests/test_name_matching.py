"""Matching the model's ARKit channels to a character's shape keys by name (jambatalk_blender/core/names.py)."""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jambatalk_blender.core import name_tables
from jambatalk_blender.core.names import (
    ARKIT_52,
    UPPER_FACE,
    ChannelMap,
    MappingError,
    Target,
    load_user_mapping,
    match_channels,
    no_match_sentence,
    normalise,
    read_user_mapping,
)

CONVENTIONS = dict(name_tables.CONVENTIONS)


def table_keys(table) -> list[str]:
    return list(dict.fromkeys(e if isinstance(e, str) else e[0] for entries in table.values() for e in entries))


def keys_of(cm: ChannelMap, channel: str) -> list[str]:
    return [t.key for t in cm.targets[channel]]


# ---- the channel list --------------------------------------------------------------------------------------------


def test_arkit_52_is_apples_list_in_apples_order():
    assert len(ARKIT_52) == 52 == len(set(ARKIT_52))
    # Apple's page: left eye (7), right eye (7), mouth and jaw (27), eyebrows (5), cheeks (3), nose (2), tongue.
    assert ARKIT_52[:7] == ("eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
                            "eyeSquintLeft", "eyeWideLeft")
    assert ARKIT_52[7] == "eyeBlinkRight" and ARKIT_52[14:19] == ("jawForward", "jawLeft", "jawRight", "jawOpen",
                                                                  "mouthClose")
    assert ARKIT_52[41:] == ("browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
                             "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
                             "tongueOut")


def test_upper_face_is_the_eye_and_brow_channels():
    assert UPPER_FACE == {n for n in ARKIT_52 if n.startswith(("eye", "brow"))}
    assert len(UPPER_FACE) == 19 and "eyeWideRight" in UPPER_FACE and "browInnerUp" in UPPER_FACE
    assert "cheekSquintLeft" not in UPPER_FACE and "noseSneerLeft" not in UPPER_FACE


# ---- normalisation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [
    "eyeBlinkLeft", "EyeBlinkLeft", "EyeBlink_L", "eyeBlink_L", "eye_blink_left", "eyeBlink.L", "eyeBlink-L",
    "eyeBlink L", "eyeBlink_l", "L_eyeBlink", "leftEyeBlink", "EyeLeftBlink", "EYEBLINKLEFT", "EYE_BLINK_L",
    "ARKit_eyeBlinkLeft", "arkit.eyeBlinkLeft", "BS_eyeBlink_L", "bs_eyeBlinkLeft", "blendShape.eyeBlinkLeft",
    "blendShape1.eyeBlinkLeft", "Head_blendShape.eyeBlink_L", "Face_eyeBlinkLeft", "A14_Eye_Blink_Left",
    "!ex-eyeBlinkLeft", "facs_bs_EyeBlinkLeft", "  eyeBlinkLeft ",
])
def test_spellings_of_one_name_normalise_equal(spelling):
    assert normalise(spelling) == normalise("eyeBlinkLeft")


@pytest.mark.parametrize(("spelling", "channel"), [
    ("A01_Brow_Inner_Up", "browInnerUp"), ("A33_Mouth_Roll_Upper", "mouthRollUpper"),
    ("A46_Mouth_Lower_Down_Left", "mouthLowerDownLeft"), ("mouthRollLower", "mouthRollLower"),
    ("Eye_L_Look_Down", "eyeLookDownLeft"), ("MouthLowerDown_R", "mouthLowerDownRight"), ("Mouth_L", "mouthLeft"),
    ("JAW_OPEN", "jawOpen"), ("!ex-tongueOut", "tongueOut"), ("cheek-puff", "cheekPuff"),
])
def test_other_conventions_spellings_reduce_to_their_channel(spelling, channel):
    assert normalise(spelling) == normalise(channel)


def test_side_letters_inside_words_are_not_sides():
    assert normalise("mouthRollLower") == "mouthrolllower"
    assert normalise("mouthRollLower") != normalise("mouthRollower_L")
    assert normalise("mouthLowerDownLeft") == "mouthlowerdownleft"
    assert len({normalise(n) for n in ("mouthRollLower", "mouthRollUpper", "mouthLowerDownLeft",
                                       "mouthLowerDownRight", "mouthLeft", "mouthRight")}) == 6


def test_all_52_names_stay_distinct_after_normalisation():
    assert len({normalise(n) for n in ARKIT_52}) == 52
    # The usual alternative spellings of every name keep them apart as well.
    for variant in (lambda n: n.replace("Left", "_L").replace("Right", "_R"), str.upper,
                    lambda n: "ARKit_" + n[:1].upper() + n[1:]):
        assert {normalise(variant(n)) for n in ARKIT_52} == {normalise(n) for n in ARKIT_52}


def test_two_side_words_keep_their_places():
    # CC4's Eye_L_Look_L (left eye looks to the left) is not Eye_L_Look_R or Eye_R_Look_L.
    assert len({normalise(n) for n in ("Eye_L_Look_L", "Eye_L_Look_R", "Eye_R_Look_L", "Eye_R_Look_R")}) == 4


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_normalise_is_total(text):
    assert isinstance(normalise(text), str)  # never raises, whatever a key is called


_SPELLINGS = (lambda n: n, str.upper, lambda n: re.sub(r"(?<!^)([A-Z])", r"_\1", n), lambda n: "ARKit_" + n,
              lambda n: "blendShape1." + n, lambda n: n.replace("Left", "_L").replace("Right", "_R"))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ARKIT_52), st.sampled_from(_SPELLINGS))
def test_normalise_is_idempotent_on_key_names(channel, spelling):
    # Idempotent on the names rigs use; garbage such as "R0A:R" may normalise twice differently, harmlessly.
    once = normalise(spelling(channel))
    assert normalise(once) == once


def test_no_table_key_normalises_to_another_channels_name():
    by_norm = {normalise(n): n for n in ARKIT_52}
    for conv_name, table in name_tables.CONVENTIONS:
        assert set(table) <= set(ARKIT_52), conv_name
        for channel, entries in table.items():
            for entry in entries:
                key = entry if isinstance(entry, str) else entry[0]
                assert by_norm.get(normalise(key), channel) == channel, (conv_name, channel, key)


# ---- matching by name ------------------------------------------------------------------------------------------


def test_exact_arkit_rig_matches_everything():
    cm = match_channels(ARKIT_52, list(reversed(ARKIT_52)))
    assert cm.matched_count == 52 and cm.unmatched_channels == () and cm.unused_keys == ()
    assert all(cm.targets[c] == (Target(c, 1.0),) for c in ARKIT_52)
    assert list(cm.targets) == list(ARKIT_52)  # the model's channel order, not the mesh's
    assert cm.convention == "ARKit names"
    assert cm.summary() == "All 52 ARKit channels matched (ARKit names)."


@pytest.mark.parametrize("spell", [
    lambda n: n[:1].upper() + n[1:],                            # Live Link Face / Unity
    lambda n: n.replace("Left", "_L").replace("Right", "_R"),   # FaceCap / Rokoko
    lambda n: "blendShape1." + n,                               # Maya export
])
def test_arkit_spelling_variants_match_and_report_arkit_names(spell):
    keys = [spell(n) for n in ARKIT_52]
    cm = match_channels(ARKIT_52, keys)
    assert cm.matched_count == 52 and cm.unused_keys == ()
    assert [keys_of(cm, c)[0] for c in ARKIT_52] == keys
    assert cm.convention == "ARKit names"


def test_exact_name_beats_a_normalised_one():
    cm = match_channels(["jawOpen"], ["Jaw_Open", "jawOpen"])
    assert keys_of(cm, "jawOpen") == ["jawOpen"] and cm.unused_keys == ("Jaw_Open",)


def test_of_two_equal_spellings_the_first_key_wins_and_the_other_stays_unused():
    cm = match_channels(["eyeBlinkLeft"], ["EyeBlink_L", "eyeBlink_L"])
    assert keys_of(cm, "eyeBlinkLeft") == ["EyeBlink_L"] and cm.unused_keys == ("eyeBlink_L",)


def test_node_prefixed_names_match_by_their_target_part():
    cm = match_channels(["jawOpen", "eyeBlinkLeft"], ["Head_Geo.jawOpen", "eyeBlink.L"])
    assert keys_of(cm, "jawOpen") == ["Head_Geo.jawOpen"] and keys_of(cm, "eyeBlinkLeft") == ["eyeBlink.L"]


def test_no_key_is_shared_by_two_channels_through_names():
    keys = ["mouthRollLower", "mouthLowerDown_L", "MouthLeft", "mouth_left", "Mouth.L", "mouthRoll_Lower"]
    cm = match_channels(ARKIT_52, keys)
    driven = [t.key for ts in cm.targets.values() for t in ts]
    assert len(driven) == len(set(driven))
    assert keys_of(cm, "mouthRollLower") == ["mouthRollLower"]
    assert keys_of(cm, "mouthLowerDownLeft") == ["mouthLowerDown_L"]
    assert keys_of(cm, "mouthLeft") == ["MouthLeft"]
    assert cm.unused_keys == ("mouth_left", "Mouth.L", "mouthRoll_Lower")


def test_partial_rig_reports_unmatched_channels_and_unused_keys_in_order():
    keys = ["Basis_extra", "jawOpen", "Smile", "eyeBlink_L", "eyeBlink_R", "mouthClose", "Frown"]
    cm = match_channels(ARKIT_52, keys)
    assert set(cm.targets) == {"jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthClose"}
    assert cm.unmatched_channels == tuple(c for c in ARKIT_52 if c not in cm.targets)
    assert cm.unused_keys == ("Basis_extra", "Smile", "Frown")
    summary = cm.summary()
    assert summary.startswith("4 of 52 ARKit channels matched (ARKit names); not on this mesh: eyeLookDownLeft, ")
    assert "\n" not in summary and "(40 more)" in summary


def test_subset_of_channels_in_another_order():
    channels = ["tongueOut", "jawOpen", "mouthFunnel"]
    cm = match_channels(channels, ["mouthFunnel", "jawOpen", "Tongue_Out", "cheekPuff"])
    assert list(cm.targets) == channels and cm.unused_keys == ("cheekPuff",)
    assert cm.summary() == "All 3 ARKit channels matched (ARKit names)."


def test_matching_is_deterministic():
    keys = table_keys(CONVENTIONS["Character Creator 4 Extended"]) + ["jawOpen", "Extra_1", "Extra_2"]
    first = match_channels(ARKIT_52, keys)
    for seed in range(5):
        shuffled = list(ARKIT_52)
        random.Random(seed).shuffle(shuffled)
        again = match_channels(shuffled, keys)
        assert dict(again.targets) == dict(first.targets)
        assert again.unused_keys == first.unused_keys and again.convention == first.convention
    assert match_channels(ARKIT_52, keys) == first


def test_a_mesh_with_no_matching_key():
    cm = match_channels(ARKIT_52, ["Key 1", "Key 2", "Smile"])
    assert cm.matched_count == 0 and cm.unmatched_channels == ARKIT_52 and cm.unused_keys == ("Key 1", "Key 2", "Smile")
    assert cm.convention == "none" and cm.summary() == "0 of 52 ARKit channels matched."
    sentence = no_match_sentence("Suzanne", 52)
    assert "Suzanne" in sentence and "52 ARKit channels" in sentence and "JSON mapping file" in sentence
    assert "rename" in sentence and sentence.endswith(".") and sentence.count(". ") == 0
    assert "the ARKit channel" in no_match_sentence("Cube", 1)
    assert match_channels(ARKIT_52, []).matched_count == 0


def test_non_arkit_channel_names_still_match_by_name():
    cm = match_channels(["visemeAA", "jawOpen"], ["viseme_AA", "JawOpen"])
    assert keys_of(cm, "visemeAA") == ["viseme_AA"]
    assert cm.summary() == "All 2 channels matched (ARKit names)."


# ---- convention tables -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("conv_name", list(CONVENTIONS))
def test_a_full_rig_in_each_convention_matches_every_channel_it_defines(conv_name):
    table = CONVENTIONS[conv_name]
    keys = table_keys(table)
    cm = match_channels(ARKIT_52, keys)
    assert set(cm.targets) == set(table)
    for channel, entries in table.items():
        assert {t.key for t in cm.targets[channel]} == {e if isinstance(e, str) else e[0] for e in entries}
    assert cm.unused_keys == ()
    assert cm.convention == conv_name
    assert cm.unmatched_channels == tuple(c for c in ARKIT_52 if c not in table)


@pytest.mark.parametrize("conv_name", list(CONVENTIONS))
def test_conventions_are_found_under_other_spellings_of_their_names(conv_name):
    # A table written BrowLowererL style also finds BROW_LOWERER_L (Meta's XR enum spelling), and so on.
    table = CONVENTIONS[conv_name]
    keys = [re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", k).upper() for k in table_keys(table)]
    cm = match_channels(ARKIT_52, keys)
    assert set(cm.targets) == set(table)


def test_cc4_extended_one_channel_drives_several_keys():
    keys = table_keys(CONVENTIONS["Character Creator 4 Extended"])
    cm = match_channels(ARKIT_52, keys)
    assert keys_of(cm, "mouthFunnel") == ["Mouth_Funnel_Up_L", "Mouth_Funnel_Up_R", "Mouth_Funnel_Down_L",
                                          "Mouth_Funnel_Down_R"]
    assert keys_of(cm, "cheekPuff") == ["Cheek_Puff_L", "Cheek_Puff_R"]
    assert keys_of(cm, "browInnerUp") == ["Brow_Raise_Inner_L", "Brow_Raise_Inner_R"]
    assert keys_of(cm, "eyeLookOutLeft") == ["Eye_L_Look_L"] and keys_of(cm, "eyeLookInLeft") == ["Eye_L_Look_R"]
    assert keys_of(cm, "mouthRollUpper") == ["Mouth_Roll_In_Upper_L", "Mouth_Roll_In_Upper_R"]
    assert all(t.factor == 1.0 for ts in cm.targets.values() for t in ts)


def test_cc4_character_with_its_other_shapes_leaves_them_unused():
    extra = ["Mouth_Smile_Sharp_L", "Mouth_Roll_Out_Upper_L", "V_Open", "Eye_Blink"]
    keys = table_keys(CONVENTIONS["Character Creator 4 Extended"]) + extra
    cm = match_channels(ARKIT_52, keys)
    assert cm.matched_count == 52 and cm.unused_keys == tuple(extra)


def test_table_drives_the_keys_of_a_split_channel_that_are_present():
    cm = match_channels(ARKIT_52, ["Jaw_Open", "Mouth_Funnel_Up_L", "Mouth_Funnel_Down_R", "Eye_L_Look_L"])
    assert keys_of(cm, "mouthFunnel") == ["Mouth_Funnel_Up_L", "Mouth_Funnel_Down_R"]
    assert keys_of(cm, "jawOpen") == ["Jaw_Open"] and keys_of(cm, "eyeLookOutLeft") == ["Eye_L_Look_L"]
    assert cm.convention == "Character Creator 4 Extended"


def test_names_take_precedence_over_tables():
    # An ARKit-named cheekPuff on a CC4 head is used as is; the table only fills what names left.
    keys = ["cheekPuff", "Cheek_Puff_L", "Cheek_Puff_R", "Mouth_Funnel_Up_L"]
    cm = match_channels(ARKIT_52, keys)
    assert keys_of(cm, "cheekPuff") == ["cheekPuff"]
    assert keys_of(cm, "mouthFunnel") == ["Mouth_Funnel_Up_L"]
    assert cm.unused_keys == ("Cheek_Puff_L", "Cheek_Puff_R")


def test_the_table_matching_most_channels_wins():
    # Keys from Unified Expressions (a few) and Meta Movement (more): Meta's table is used.
    keys = ["EyeClosedLeft", "EyesClosedR", "LipSuckLT", "LipSuckRT", "JawDrop", "LipsToward"]
    cm = match_channels(ARKIT_52, keys)
    assert cm.convention == "Meta Movement face tracking"
    assert set(cm.targets) == {"eyeBlinkRight", "mouthRollUpper", "jawOpen", "mouthClose"}
    assert cm.unused_keys == ("EyeClosedLeft",)


def test_cc3_arkit_set_is_matched_by_normalisation_and_named():
    keys = table_keys(CONVENTIONS["Character Creator 3+ ARKit"])
    assert keys[0] == "A01_Brow_Inner_Up" and keys[-1] == "A52_Tongue_Out" and len(keys) == 52
    cm = match_channels(ARKIT_52, keys)
    assert keys_of(cm, "browInnerUp") == ["A01_Brow_Inner_Up"] and keys_of(cm, "tongueOut") == ["A52_Tongue_Out"]
    assert cm.convention == "Character Creator 3+ ARKit"


def test_mpfb2_face_units_are_prefixed_arkit_names():
    cm = match_channels(ARKIT_52, ["!ex-jawOpen", "!ex-mouthFunnel", "!ex-eyeBlinkLeft"])
    assert keys_of(cm, "jawOpen") == ["!ex-jawOpen"] and cm.convention == "MPFB2 face units"


# ---- user mapping ------------------------------------------------------------------------------------------------


def test_user_mapping_beats_names():
    keys = ["jawOpen", "MyJawDown", "eyeBlinkLeft"]
    mapping = load_user_mapping('{"jawOpen": "MyJawDown"}')
    cm = match_channels(ARKIT_52, keys, mapping)
    assert keys_of(cm, "jawOpen") == ["MyJawDown"] and keys_of(cm, "eyeBlinkLeft") == ["eyeBlinkLeft"]
    assert cm.unused_keys == ("jawOpen",)
    assert cm.convention == "user mapping + ARKit names"


def test_user_mapping_forms_factors_and_multiple_targets():
    text = json.dumps({
        "$comment": "for the Mira rig", "$version": 1,
        "jawOpen": "Jaw_Down",
        "mouthFunnel": ["Funnel_U", "Funnel_D"],
        "eyeBlink_L": {"key": "Blink_L", "factor": 0.8},
        "mouthSmileLeft": ["Smile_L", {"key": "Cheek_L", "factor": -0.25}],
        "tongueOut": [],
    })
    mapping = load_user_mapping(text)
    assert mapping == {
        "jawOpen": (Target("Jaw_Down"),),
        "mouthFunnel": (Target("Funnel_U"), Target("Funnel_D")),
        "eyeBlinkLeft": (Target("Blink_L", 0.8),),
        "mouthSmileLeft": (Target("Smile_L"), Target("Cheek_L", -0.25)),
        "tongueOut": (),
    }
    keys = ["Jaw_Down", "Funnel_U", "Funnel_D", "Blink_L", "Smile_L", "Cheek_L", "tongueOut"]
    cm = match_channels(ARKIT_52, keys, mapping)
    assert cm.targets["eyeBlinkLeft"] == (Target("Blink_L", 0.8),)
    assert keys_of(cm, "mouthFunnel") == ["Funnel_U", "Funnel_D"]
    assert "tongueOut" in cm.unmatched_channels and cm.unused_keys == ("tongueOut",)  # switched off
    assert cm.convention == "user mapping"


def test_user_keys_are_not_taken_by_names_and_missing_user_keys_fall_back():
    # The user drives the "jawOpen" key from mouthClose; jawOpen's mapped key is not on this mesh, so jawOpen
    # falls back to names but cannot take the key the user gave to mouthClose.
    mapping = load_user_mapping('{"mouthClose": "jawOpen", "jawOpen": "OnlyOnTheHead", "cheekPuff": "Puff"}')
    cm = match_channels(ARKIT_52, ["jawOpen", "Jaw_Open", "cheekPuff"], mapping)
    assert keys_of(cm, "mouthClose") == ["jawOpen"]
    assert keys_of(cm, "jawOpen") == ["Jaw_Open"]
    assert keys_of(cm, "cheekPuff") == ["cheekPuff"]


def test_user_mapping_entries_for_channels_the_model_lacks_are_ignored():
    mapping = load_user_mapping('{"tongueOut": "Tongue"}')
    cm = match_channels(["jawOpen"], ["jawOpen", "Tongue"], mapping)
    assert list(cm.targets) == ["jawOpen"] and cm.unused_keys == ("Tongue",)


def _assert_one_sentence(message: str) -> None:
    assert message and "\n" not in message and message[0].isupper() and message[-1] in ".?"
    assert ". " not in message and "; did" not in message.replace("; did you mean", "")


@pytest.mark.parametrize(("text", "fragment"), [
    ('{"jawOpen": "A",}', "not valid JSON (line 1"),
    ("", "not valid JSON"),
    ('["jawOpen"]', "one JSON object"),
    ('{"jawOpn": "Jaw"}', "did you mean jawOpen?"),
    ('{"mouthSmile_Lft": "S"}', "did you mean mouthSmileLeft?"),
    ('{"xyzzy": "S"}', "unknown channel “xyzzy”"),
    ('{"jawOpen": 3}', "not the number 3"),
    ('{"jawOpen": null}', "not null"),
    ('{"jawOpen": [["A"]]}', "not a list"),
    ('{"jawOpen": ""}', "non-empty string"),
    ('{"jawOpen": {"key": "A", "factor": NaN}}', "finite number"),
    ('{"jawOpen": {"key": "A", "factor": Infinity}}', "finite number"),
    ('{"jawOpen": {"key": "A", "factor": 1e999}}', "finite number"),
    ('{"jawOpen": {"key": "A", "factor": "0.5"}}', "must be a number"),
    ('{"jawOpen": {"key": "A", "factor": true}}', "must be a number"),
    ('{"jawOpen": {"factor": 0.5}}', "no \"key\""),
    ('{"jawOpen": {"key": "A", "weight": 0.5}}', "unknown field “weight”"),
    ('{"jawOpen": "A", "jawOpen": "B"}', "twice"),
    ('{"jawOpen": "A", "Jaw_Open": "B"}', "maps jawOpen twice"),
])
def test_bad_mapping_files_give_one_sentence(text, fragment):
    with pytest.raises(MappingError) as info:
        load_user_mapping(text)
    message = str(info.value)
    assert fragment in message
    _assert_one_sentence(message)
    assert isinstance(info.value, ValueError)


def test_mapping_channel_names_are_checked_against_the_models_channels():
    assert load_user_mapping('{"visemeAA": "AA"}', channels=["visemeAA"]) == {"visemeAA": (Target("AA"),)}
    with pytest.raises(MappingError, match="unknown channel"):
        load_user_mapping('{"jawOpen": "J"}', channels=["visemeAA"])


def test_read_user_mapping(tmp_path):
    good = tmp_path / "mira.json"
    good.write_text('\ufeff{"jawOpen": "Jaw_Down"}', encoding="utf-8")  # a BOM from Notepad is fine
    assert read_user_mapping(good) == {"jawOpen": (Target("Jaw_Down"),)}
    assert read_user_mapping(str(good)) == {"jawOpen": (Target("Jaw_Down"),)}

    big = tmp_path / "big.json"
    big.write_text('{"$comment": "' + "x" * (1 << 20) + '"}', encoding="utf-8")
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"jawOpen": "Mâchoire"}'.encode("latin-1"))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{jawOpen: 1}", encoding="utf-8")
    cases = [(tmp_path / "missing.json", "does not exist"), (big, "at most 1 MB"), (latin, "not UTF-8"),
             (tmp_path, "is not a file"), (bad_json, "not valid JSON")]
    for path, fragment in cases:
        with pytest.raises(MappingError) as info:
            read_user_mapping(path)
        assert fragment in str(info.value), path
        _assert_one_sentence(str(info.value))
