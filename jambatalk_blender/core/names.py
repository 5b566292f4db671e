"""Which of a mesh's shape keys each of the model's ARKit channels drives, matched by name.

Pure module (standard library only) so it runs and is tested outside Blender. The animator's own character
rarely names its keys exactly as Apple does, so a channel is matched, in this order of precedence:

1. the user's mapping file (exact key names; an entry wins for its channel when one of its keys is on the mesh),
2. a key named exactly like the channel,
3. a key whose `normalise`d name equals the channel's (eyeBlink_L, EyeBlinkLeft, ARKit_eyeBlinkLeft ...),
   then one whose name after a Maya-style ``node.`` prefix does,
4. the convention table (`name_tables`) that matches the most of the still unmatched channels on this mesh, for
   conventions that do not reduce to ARKit names (Character Creator 4 Extended, Unified Expressions ...).

Name matching never lets two channels share a key: each key is claimed by the first channel that reaches it,
and distinct ARKit names stay distinct after normalisation. Only the user's mapping or a table can make one key
serve several channels (none of the built-in tables do); both can make one channel drive several keys. Everything is
deterministic: channel order, then the mesh's key order, then table order decide every tie.

User mapping file (JSON, UTF-8, at most 1 MB): one object whose keys are channel names and values say which
shape keys the channel drives::

    {
      "$comment": "Anything under a key starting with $ is ignored.",
      "jawOpen": "MyJawDown",
      "mouthFunnel": ["Funnel_U", "Funnel_D"],
      "eyeBlinkLeft": {"key": "Blink_L", "factor": 0.8},
      "mouthSmileLeft": ["Smile_L", {"key": "Cheek_L", "factor": 0.3}],
      "tongueOut": []
    }

A value is a key name, a ``{"key": ..., "factor": ...}`` object (factor optional, default 1.0, any finite
number), or a list of those. An empty list switches the channel off on every mesh. Channel names may be spelled
any way `normalise` accepts (eyeBlink_L for eyeBlinkLeft). Key names are exact shape-key names; an entry whose
keys are all missing from a mesh is skipped there, so one file can serve a head and its separate teeth mesh.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import MappingProxyType

from . import name_tables

ARKIT_52: tuple[str, ...] = name_tables.ARKIT_52
# The eye and brow channels: what a "lower face only" or "keep the animator's eyes" option leaves out.
UPPER_FACE: frozenset[str] = frozenset(name for name in ARKIT_52 if name.startswith(("eye", "brow")))

ARKIT_CONVENTION = "ARKit names"
USER_CONVENTION = "user mapping"
NO_CONVENTION = "none"
MAX_MAPPING_BYTES = 1 << 20  # 1 MB: a full mapping is a few kB; anything this big is the wrong file

# Side words a name may carry, as a separate token (separator- or case-delimited): "_L", ".R", "Left", "l_".
_SIDES = {"l": "left", "left": "left", "r": "right", "right": "right"}
# Prefixes exporters put before the shape name, stripped while something with a letter is left after them:
# "ARKit_"/"arkit.", Maya's blendShape node ("blendShape1."), "BS_", "Face_", MPFB2's "!ex-" (the "!" goes with
# the leading punctuation), Character Creator's "A01_".."A52_" numbering, Daz Genesis 9's "facs_bs_".
_PREFIX = re.compile(r"(?:arkit|apple|blend_?shapes?\d*|bs|facs_?bs|face|ex|a\d\d)[\s._:\-]+", re.IGNORECASE)
# A Maya-style "<node>.<target>" name whose node is plainly a blend-shape node ("Head_blendShape.jawOpen").
_NODE = re.compile(r"(?:blend_?shapes?\d*|bs|morphs?|shapes?|arkit)$", re.IGNORECASE)
# Words inside one separator-free run: "eyeBlinkLeft" -> eye|Blink|Left, "LipFunnelerLT" -> Lip|Funneler|LT,
# "EYE" stays whole, digits apart; any other letters (non-ASCII names) form their own words.
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_A-Za-z]+")
_SEPARATORS = re.compile(r"[\W_]+")
_HAS_LETTER = re.compile(r"[^\W\d_]")


class MappingError(ValueError):
    """A user mapping file that cannot be used; str() is one sentence to show the animator as is."""


@dataclass(frozen=True)
class Target:
    """One shape key a channel drives, at ``factor`` times the channel's weight."""

    key: str
    factor: float = 1.0


@dataclass(frozen=True)
class ChannelMap:
    """How one mesh's shape keys are driven: channel -> its targets, in the model's channel order.

    A key may appear under several channels (only when a table or the user says so): the bake sums them.
    """

    targets: Mapping[str, tuple[Target, ...]]
    unmatched_channels: tuple[str, ...]
    unused_keys: tuple[str, ...]
    convention: str

    @property
    def matched_count(self) -> int:
        return len(self.targets)

    @property
    def channel_count(self) -> int:
        return len(self.targets) + len(self.unmatched_channels)

    def summary(self, max_listed: int = 8) -> str:
        """One line for the panel, e.g. "48 of 52 ARKit channels matched (ARKit names); not on this mesh: ..."."""
        channels = (*self.targets, *self.unmatched_channels)
        noun = "ARKit channels" if set(channels) <= set(ARKIT_52) else "channels"
        total = self.channel_count
        if not self.targets:
            return f"0 of {total} {noun} matched."
        if not self.unmatched_channels:
            return f"All {total} {noun} matched ({self.convention})."
        missing = list(self.unmatched_channels[:max_listed])
        if len(self.unmatched_channels) > max_listed:
            missing.append(f"… ({len(self.unmatched_channels) - max_listed} more)")
        return (f"{self.matched_count} of {total} {noun} matched ({self.convention}); "
                f"not on this mesh: {', '.join(missing)}")


@functools.lru_cache(maxsize=8192)  # pure, and called for the same table and key names on every match
def normalise(name: str) -> str:
    """A canonical spelling under which common spellings of one ARKit name compare equal.

    Case, separators (``_ . - space``) and exporter prefixes are ignored, and a side marker (``_L``, ``.R``,
    ``Left``, ``L_`` ...) becomes a trailing "left"/"right", so eyeBlink_L, EyeBlinkLeft, eye_blink_left,
    ARKit_eyeBlinkLeft, blendShape1.eyeBlinkLeft and L_eyeBlink all give "eyeblinkleft". L and R count as sides
    only as their own word, so mouthRollLower keeps its L. A name with two side words (CC4's Eye_L_Look_L) keeps
    them in place. Distinct ARKit names stay distinct.
    """
    text = unicodedata.normalize("NFKC", name).strip()
    text = _strip_leading_punctuation(text)
    if "." in text:
        node, rest = text.split(".", 1)
        if _NODE.search(node) and _HAS_LETTER.search(rest):
            text = rest
    while (match := _PREFIX.match(text)) and _HAS_LETTER.search(text[match.end():]):
        text = _strip_leading_punctuation(text[match.end():])
    words = [word for part in _SEPARATORS.split(text) for word in _WORD.findall(part)]
    sides = [i for i, word in enumerate(words) if word.casefold() in _SIDES]
    if len(sides) == 1:
        side = _SIDES[words.pop(sides[0]).casefold()]
        words.append(side)
    else:
        words = [_SIDES.get(word.casefold(), word) for word in words]
    return "".join(words).casefold()


def _strip_leading_punctuation(text: str) -> str:
    return re.sub(r"^[\W_]+", "", text)


def _node_tail(name: str) -> str | None:
    """The normalised part after the last "." of a ``node.target`` name, or None when it is a side or number."""
    if "." not in name:
        return None
    tail = name.rsplit(".", 1)[1].strip()
    if len(_HAS_LETTER.findall(tail)) < 2 or tail.casefold() in _SIDES:
        return None
    return normalise(tail) or None


def _light(name: str) -> str:
    """Case and separators ignored, nothing else: tells "EyeBlinkLeft" (ARKit) from "A14_Eye_Blink_Left"."""
    return _SEPARATORS.sub("", name).casefold()


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


class _KeyIndex:
    """The mesh's keys by normalised name (and by node tail), each list in the mesh's key order."""

    def __init__(self, keys: Sequence[str]):
        self.keys = keys
        self.present = set(keys)
        self.by_norm: dict[str, list[str]] = {}
        self.by_tail: dict[str, list[str]] = {}
        for key in keys:
            if norm := normalise(key):
                self.by_norm.setdefault(norm, []).append(key)
            if tail := _node_tail(key):
                self.by_tail.setdefault(tail, []).append(key)


def _first_free(candidates: Iterable[str], taken: Mapping[str, str] | set[str]) -> str | None:
    return next((key for key in candidates if key not in taken), None)


def _table_entry(table: name_tables.Table, channel: str,
                 arkit_by_norm: Mapping[str, str]) -> tuple[name_tables.TableEntry, ...]:
    """The table's entries for a channel, also when the model spells the ARKit name differently."""
    if channel in table:
        return table[channel]
    arkit = arkit_by_norm.get(normalise(channel))
    return table.get(arkit, ()) if arkit else ()


def _resolve(entries: Iterable[name_tables.TableEntry], index: _KeyIndex,
             blocked: Mapping[str, str]) -> tuple[Target, ...]:
    """Table entries -> the targets present on the mesh (verbatim first, else by normalised name)."""
    found: dict[str, Target] = {}
    for entry in entries:
        name, factor = (entry, 1.0) if isinstance(entry, str) else entry
        key = name if name in index.present and name not in blocked else None
        if key is None:
            key = _first_free(index.by_norm.get(normalise(name), ()), blocked)
        if key is not None and key not in found:
            found[key] = Target(key, float(factor))
    return tuple(found.values())


def match_channels(channels: Sequence[str], key_names: Sequence[str],
                   user_mapping: Mapping[str, Sequence[Target]] | None = None) -> ChannelMap:
    """Match the model's channels to one mesh's shape keys (Basis already removed); see the module docstring."""
    channels = _unique(channels)
    keys = _unique(key_names)
    index = _KeyIndex(keys)
    channel_set = set(channels)
    channel_by_norm: dict[str, str] = {}
    for channel in channels:
        channel_by_norm.setdefault(normalise(channel), channel)

    targets: dict[str, tuple[Target, ...]] = {}
    switched_off: set[str] = set()
    user_keys: dict[str, str] = {}  # key -> channel, for keys the user mapping drives
    for name, entry in (user_mapping or {}).items():
        channel = name if name in channel_set else channel_by_norm.get(normalise(name))
        if channel is None or channel in targets or channel in switched_off:
            continue  # a channel this model does not output (or spelled twice): nothing to drive
        entry = tuple(entry)
        if not entry:
            switched_off.add(channel)
            continue
        present = tuple(dict.fromkeys(t for t in entry if t.key in index.present))
        if present:
            targets[channel] = present
            for target in present:
                user_keys.setdefault(target.key, channel)

    # Names: all exact matches first, then normalised, then node tails, so a looser spelling never takes a
    # key an exact name would have had.
    claimed: dict[str, str] = dict(user_keys)
    name_keys: set[str] = set()
    for level in ("exact", "norm", "tail"):
        for channel in channels:
            if channel in targets or channel in switched_off:
                continue
            if level == "exact":
                key = channel if channel in index.present and channel not in claimed else None
            elif level == "norm":
                key = _first_free(index.by_norm.get(normalise(channel), ()), claimed)
            else:
                key = _first_free(index.by_tail.get(normalise(channel), ()), claimed)
            if key is not None:
                targets[channel] = (Target(key),)
                claimed[key] = channel
                name_keys.add(key)

    # Tables, for what names left: the one that matches the most remaining channels on this mesh.
    remaining = [c for c in channels if c not in targets and c not in switched_off]
    arkit_by_norm = {normalise(name): name for name in ARKIT_52}
    best: tuple[tuple[int, int, int], str, dict[str, tuple[Target, ...]]] | None = None
    if remaining:
        for order, (conv_name, table) in enumerate(name_tables.CONVENTIONS):
            found = {}
            for channel in remaining:
                resolved = _resolve(_table_entry(table, channel, arkit_by_norm), index, user_keys)
                if resolved:
                    found[channel] = resolved
            score = (len(found), sum(map(len, found.values())), -order)
            if found and (best is None or score > best[0]):
                best = (score, conv_name, found)
    if best is not None:
        targets.update(best[2])

    ordered = {c: targets[c] for c in channels if c in targets}
    driven = {t.key for ts in ordered.values() for t in ts}
    if best is not None:
        automatic = best[1]
    elif name_keys:
        automatic = _name_convention(name_keys)
    else:
        automatic = None
    if user_keys and automatic:
        convention = f"{USER_CONVENTION} + {automatic}"
    else:
        convention = USER_CONVENTION if user_keys else (automatic or NO_CONVENTION)
    return ChannelMap(
        targets=MappingProxyType(ordered),
        unmatched_channels=tuple(c for c in channels if c not in ordered),
        unused_keys=tuple(k for k in keys if k not in driven),
        convention=convention,
    )


def _name_convention(name_keys: set[str]) -> str:
    """Which convention name-matched keys are written in: a table's verbatim names (A01_Brow_Inner_Up,
    !ex-jawOpen) when it names more of them than plain ARKit spellings (any case or separators) do."""
    arkit = {_light(name) for name in ARKIT_52}
    arkit_count = sum(_light(key) in arkit for key in name_keys)
    best_name, best_count = ARKIT_CONVENTION, arkit_count
    for conv_name, table in name_tables.CONVENTIONS:
        verbatim = {e if isinstance(e, str) else e[0] for entries in table.values() for e in entries}
        count = len(name_keys & verbatim)
        if count > best_count:
            best_name, best_count = conv_name, count
    return best_name


def no_match_sentence(object_name: str, channel_count: int) -> str:
    """The one sentence the panel shows for a mesh none of whose shape keys matched."""
    channels = "the ARKit channel" if channel_count == 1 else f"any of the {channel_count} ARKit channels"
    return (f"“{object_name}” has no shape key that matches {channels}: rename its shape keys to ARKit names "
            f"(jawOpen, eyeBlinkLeft, …) or choose a JSON mapping file in the JambaTalk panel.")


def load_user_mapping(text: str, channels: Sequence[str] = ARKIT_52) -> dict[str, tuple[Target, ...]]:
    """Parse and check a user mapping file's text (format in the module docstring); raises `MappingError`."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise MappingError(f"The mapping file names “{exc.args[0]}” twice; keep one entry per channel.") from None
    except json.JSONDecodeError as exc:
        raise MappingError(f"The mapping file is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                           f"{exc.msg}).") from None
    if not isinstance(data, dict):
        raise MappingError("The mapping file must hold one JSON object, like {\"jawOpen\": \"MyJawKey\"}.")
    by_norm: dict[str, str] = {}
    for channel in channels:
        by_norm.setdefault(normalise(channel), channel)
    mapping: dict[str, tuple[Target, ...]] = {}
    spelled: dict[str, str] = {}
    for name, value in data.items():
        if name.startswith("$"):
            continue  # "$comment" and any other annotation
        channel = name if name in channels else by_norm.get(normalise(name))
        if channel is None:
            raise MappingError(_unknown_channel(name, channels))
        if channel in spelled:
            raise MappingError(f"The mapping file maps {channel} twice (as “{spelled[channel]}” and “{name}”); "
                               f"keep one entry per channel.")
        spelled[channel] = name
        mapping[channel] = _targets(channel, value)
    return mapping


def read_user_mapping(path: str | PathLike[str],
                      channels: Sequence[str] = ARKIT_52) -> dict[str, tuple[Target, ...]]:
    """Read and check a user mapping file; every problem (missing, too big, not UTF-8 ...) is a `MappingError`."""
    file = Path(path)
    try:
        size = file.stat().st_size
        if not file.is_file():
            raise MappingError(f"The mapping file “{file}” is not a file.")
        if size > MAX_MAPPING_BYTES:
            raise MappingError(f"The mapping file “{file.name}” is {size / 1e6:.1f} MB; a mapping file is at most "
                               f"1 MB, so this is probably not one.")
        raw = file.read_bytes()
    except FileNotFoundError:
        raise MappingError(f"The mapping file “{file}” does not exist.") from None
    except OSError as exc:
        raise MappingError(f"The mapping file “{file}” cannot be read ({exc.strerror or exc}).") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MappingError(f"The mapping file “{file.name}” is not UTF-8 text.") from None
    return load_user_mapping(text, channels)


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json keeps the last of two equal keys without a word; a mapping file that says two things is an error.
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _unknown_channel(name: str, channels: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, channels, n=1, cutoff=0.6)
    if not close:  # compare spellings loosely too: "mouth_smile_lft" is closest to mouthSmileLeft
        lowered = {normalise(c): c for c in channels}
        close = [lowered[m] for m in difflib.get_close_matches(normalise(name), list(lowered), n=1, cutoff=0.6)]
    hint = f"; did you mean {close[0]}?" if close else "; channel names are ARKit names such as jawOpen."
    return f"The mapping file names an unknown channel “{name}”{hint}"


def _targets(channel: str, value: object) -> tuple[Target, ...]:
    items = value if isinstance(value, list) else [value]
    targets = tuple(_target(channel, item) for item in items)
    return tuple(dict.fromkeys(targets))


def _target(channel: str, item: object) -> Target:
    if isinstance(item, str):
        key, factor = item, 1.0
    elif isinstance(item, dict):
        unknown = sorted(set(item) - {"key", "factor"})
        if unknown:
            raise MappingError(f"The entry for {channel} has an unknown field “{unknown[0]}”; "
                               f"an entry holds only \"key\" and \"factor\".")
        if "key" not in item:
            raise MappingError(f"An entry for {channel} has no \"key\" naming the shape key to drive.")
        key, factor = item["key"], item.get("factor", 1.0)
    else:
        raise MappingError(f"The entry for {channel} must be a shape-key name, a {{\"key\": ..., \"factor\": ...}} "
                           f"object or a list of those, not {_json_type(item)}.")
    if not isinstance(key, str) or not key.strip():
        raise MappingError(f"The shape-key name for {channel} must be a non-empty string, not {_json_type(key)}.")
    if isinstance(factor, bool) or not isinstance(factor, int | float):
        raise MappingError(f"The factor for {channel} → “{key}” must be a number, not {_json_type(factor)}.")
    if not math.isfinite(factor):
        raise MappingError(f"The factor for {channel} → “{key}” must be a finite number, not {factor}.")
    return Target(key, float(factor))


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"the text “{value}”"
    if isinstance(value, int | float):
        return f"the number {value}"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__
