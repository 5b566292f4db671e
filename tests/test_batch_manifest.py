"""Batch lines from folders and CSV / JSONL manifests; packing lines into passes. No model runs here."""

from __future__ import annotations

import json

import pytest

from model_core.batch.manifest import BatchLine, LineDefaults, ManifestError, check_output_name, read_lines
from model_core.batch.packing import pack_batches


@pytest.fixture
def studio(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not read here")
    (tmp_path / "other.safetensors").write_bytes(b"not read here")
    (tmp_path / "vo" / "ch1").mkdir(parents=True)
    for name in ("vo/a.wav", "vo/ch1/b.flac", "vo/ch1/a.wav", "vo/notes.txt", "vo/.hidden/c.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def defaults(studio, **changes) -> LineDefaults:
    return LineDefaults(**{"model": str(studio / "model.safetensors"), "formats": ("arkit-csv",), **changes})


def test_a_folder_gives_its_audio_files_with_their_relative_names(studio):
    lines = read_lines(studio / "vo", defaults(studio))
    assert [line.output for line in lines] == ["a", "ch1/a", "ch1/b"]  # same stems in two folders do not clash
    assert all(line.formats == ("arkit-csv",) and line.model.endswith("model.safetensors") for line in lines)
    assert [line.output for line in read_lines(studio / "vo", defaults(studio), pattern="*.flac")] == ["ch1/b"]
    with pytest.raises(ManifestError, match="needs --checkpoint"):
        read_lines(studio / "vo", defaults(studio, model=None))
    with pytest.raises(ManifestError, match="holds no audio files"):
        read_lines(studio / "vo", defaults(studio), pattern="*.mp3")


def test_csv_columns_defaults_aliases_and_the_pipelines_own_columns(studio):
    manifest = studio / "lines.csv"
    manifest.write_text("Audio,Output,Style,Strength,Formats,checkpoint,Speaker,Start,End\n"
                        "vo/a.wav,npc/greet,,1.5,arkit-json;npy,,Guard,,\n"
                        "vo/ch1/b.flac,,calm,,,other.safetensors,Innkeeper,0.5,2\n"
                        ",,,,,,,,\n", encoding="utf-8")
    first, second = read_lines(manifest, defaults(studio, subject="neutral"))
    assert (first.number, first.output, first.subject, first.strength, first.formats) == (
        2, "npc/greet", "neutral", 1.5, ("arkit-json", "npy"))
    assert first.audio == str(studio / "vo" / "a.wav") and first.extra == {"Speaker": "Guard"}
    assert (second.output, second.subject, second.formats, second.start_s, second.end_s) == (
        "b", "calm", ("arkit-csv",), 0.5, 2.0)
    assert second.model == str(studio / "other.safetensors")
    assert BatchLine.from_json(second.to_json()) == second


def test_jsonl_lines(studio):
    manifest = studio / "lines.jsonl"
    rows = [{"audio": "vo/a.wav", "format": ["npy", "arkit-csv"], "strength": 0.5, "text": "Halt!"},
            {"audio": "vo/ch1/a.wav", "output": "ch1_a", "smoothing": 0.05, "take": 3}]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    first, second = read_lines(manifest, defaults(studio))
    assert first.formats == ("npy", "arkit-csv") and first.strength == 0.5 and first.extra == {"text": "Halt!"}
    assert second.output == "ch1_a" and second.smoothing_s == 0.05 and second.extra == {"take": "3"}


def test_every_problem_is_reported_at_once_with_its_line(studio):
    manifest = studio / "lines.csv"
    manifest.write_text("audio,strength,format,model,end,start\n"
                        "vo/a.wav,loud,,,,\n"
                        "vo/a.wav,9,,,,\n"
                        "vo/a.wav,,fbx,,,\n"
                        "vo/a.wav,,,missing.safetensors,,\n"
                        "vo/a.wav,,,,1,2\n", encoding="utf-8")
    with pytest.raises(ManifestError) as err:
        read_lines(manifest, defaults(studio))
    message = str(err.value)
    assert "5 problem(s)" in message
    for expected in ("line 2: strength 'loud' is not a number", "line 3: strength 9 must be from 0 to 4",
                     "line 4: format 'fbx' is not one of", "line 5: model", "line 6: end 1 s must be after start"):
        assert expected in message


def test_misspelt_columns_missing_audio_and_clashing_outputs_are_refused(studio):
    manifest = studio / "lines.csv"
    manifest.write_text("audio,stregth\nvo/a.wav,1\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="did you mean 'strength'"):
        read_lines(manifest, defaults(studio))
    manifest.write_text("file,strength\nvo/a.wav,1\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="no 'audio' column"):
        read_lines(manifest, defaults(studio))
    manifest.write_text("audio,output\nvo/a.wav,\nvo/ch1/a.wav,\nvo/ch1/b.flac,A\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="lines 2 and 3 both write 'a'; lines 2 and 4 both write 'A'"):
        read_lines(manifest, defaults(studio))
    with pytest.raises(ManifestError, match="no model"):
        read_lines(studio / "lines.csv", defaults(studio, model=None))


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/../b", ".hidden", "a/.b", "C:/x", ""])
def test_output_names_stay_inside_the_output_folder(name):
    with pytest.raises(ValueError, match="output"):
        check_output_name(name)


def test_output_names_keep_subfolders():
    assert check_output_name("act1\\scene2/npc 04") == "act1/scene2/npc 04"


def test_packing_groups_similar_lengths_within_limits():
    lengths = [50, 10, 30, 10, 200, 20, 40]
    batches = pack_batches(lengths, max_lines=3, max_padded=100)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) <= 3 and (longest * len(batch) <= 100 or len(batch) == 1)
    assert batches[0] == [1, 3, 5] and [4] in batches  # shortest first; too long for company: alone
    assert pack_batches(lengths, max_lines=1, max_padded=10**9) == [[i] for i in (1, 3, 5, 2, 6, 0, 4)]
