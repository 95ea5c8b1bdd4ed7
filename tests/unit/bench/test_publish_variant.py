"""tune's publish path: a new version with the latest files, a new config, and the measurements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tritonkit.repository import PublishError, parse_config, publish_config_variant, render_config


def make_model(repo: Path, name: str, count: int = 1) -> None:
    version = repo / name / "1"
    (version / "__pycache__").mkdir(parents=True)
    (version / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"stale")
    (version / "model.py").write_text("X = 1\n")
    (version / "weights.bin").write_bytes(b"\x00\x01")
    (version / "tritonkit.json").write_text(json.dumps({"model": name, "version": 1, "parity": {"ok": True}}))
    (repo / name / "labels.txt").write_text("a\nb\n")
    config = f'name: "{name}"\nmax_batch_size: 8\ninstance_group {{ count: {count} kind: KIND_CPU }}\n'
    (repo / name / "config.pbtxt").write_text(render_config(parse_config(config)))


def test_a_variant_is_the_next_version_with_the_same_files_and_the_new_config(tmp_path: Path) -> None:
    make_model(tmp_path, "a")
    make_model(tmp_path, "b")
    (tmp_path / "b" / "2").mkdir()  # b is one version ahead: the models share the next number
    (tmp_path / "b" / "2" / "tritonkit.json").write_text("{}")
    new = parse_config((tmp_path / "a" / "config.pbtxt").read_text())
    new.instance_group[0].count = 2

    version = publish_config_variant(
        tmp_path, {"a": new, "b": parse_config((tmp_path / "b" / "config.pbtxt").read_text())}, {"score": 1.5}
    )

    assert version == 3
    folder = tmp_path / "a" / "3"
    assert sorted(p.name for p in folder.iterdir() if p.name != "__pycache__") == [
        "model.py",
        "tritonkit.json",
        "weights.bin",
    ]
    assert (folder / "weights.bin").read_bytes() == b"\x00\x01"
    assert (folder / "__pycache__" / "model.cpython-311.pyc").read_bytes() != b"stale"  # compiled afresh
    assert parse_config((tmp_path / "a" / "config.pbtxt").read_text()).instance_group[0].count == 2
    manifest = json.loads((folder / "tritonkit.json").read_text())
    assert manifest["version"] == 3 and manifest["derived_from"]["version"] == 1
    assert manifest["tune"] == {"score": 1.5} and manifest["parity"] == {"ok": True}
    assert (tmp_path / "a" / "1" / "weights.bin").exists()  # the old version stays


def test_a_config_for_another_model_or_a_model_without_versions_is_refused(tmp_path: Path) -> None:
    make_model(tmp_path, "a")
    config = parse_config((tmp_path / "a" / "config.pbtxt").read_text())
    with pytest.raises(PublishError, match="names the model 'a'"):
        publish_config_variant(tmp_path, {"b": config}, {})
    (tmp_path / "c").mkdir()
    config.name = "c"
    with pytest.raises(PublishError, match="no version"):
        publish_config_variant(tmp_path, {"c": config}, {})
    assert not (tmp_path / "a" / "2").exists()
