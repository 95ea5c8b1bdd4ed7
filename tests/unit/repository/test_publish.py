"""Publishing versions: never overwrite, never half-visible, roll back on failure."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tritonkit.repository import PublishError, existing_versions, next_version
from tritonkit.repository._publish import (
    StagedModel,
    prune_versions,
    publish_staged,
    repository_lock,
    stage_models,
)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path below ``root`` with its bytes (None for folders)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
    }


def _models(tag: str) -> list[StagedModel]:
    return [
        StagedModel(
            "m_classifier",
            f'name: "m_classifier" # {tag}\n',
            {"model.onnx": tag.encode()},
            {"labels.txt": b"a\nb\n"},
        ),
        StagedModel("m", 'name: "m"\n', {"model.py": b"X = 1\n"}),
    ]


def _publish(repo: Path, tag: str) -> int:
    models = _models(tag)
    with repository_lock(repo) as root:
        version = next_version(repo, [m.name for m in models])
        staging = root / f"stage-{tag}"
        stage_models(staging, models, version)
        publish_staged(repo, staging, models, version)
    return version


def test_first_publish_creates_models_with_config_labels_and_version_1(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert _publish(repo, "a") == 1
    assert (repo / "m_classifier" / "1" / "model.onnx").read_bytes() == b"a"
    assert (repo / "m_classifier" / "labels.txt").read_bytes() == b"a\nb\n"
    assert "# a" in (repo / "m_classifier" / "config.pbtxt").read_text()
    assert existing_versions(repo / "m") == [1]


def test_python_sources_are_byte_compiled_before_publishing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _publish(repo, "a")
    assert list((repo / "m" / "1" / "__pycache__").glob("model.*.pyc"))


def test_second_publish_adds_version_2_and_leaves_version_1_byte_identical(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _publish(repo, "a")
    before = snapshot(repo / "m_classifier" / "1")
    labels_mtime = os.stat(repo / "m_classifier" / "labels.txt").st_mtime_ns
    assert _publish(repo, "b") == 2
    assert snapshot(repo / "m_classifier" / "1") == before
    assert (repo / "m_classifier" / "2" / "model.onnx").read_bytes() == b"b"
    assert "# b" in (repo / "m_classifier" / "config.pbtxt").read_text()
    # unchanged model-level files are not rewritten, so a polling server sees no change there
    assert os.stat(repo / "m_classifier" / "labels.txt").st_mtime_ns == labels_mtime


def test_next_version_is_shared_by_all_models_of_a_build(tmp_path: Path) -> None:
    (tmp_path / "a" / "3").mkdir(parents=True)
    (tmp_path / "b" / "7").mkdir(parents=True)
    (tmp_path / "b" / "notaversion").mkdir()
    assert next_version(tmp_path, ["a", "b", "missing"]) == 8


def test_failed_publish_rolls_back_to_the_exact_previous_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    _publish(repo, "a")
    before = snapshot(repo)
    real_rename = os.rename
    calls = {"n": 0}

    def failing_rename(src: str | Path, dst: str | Path) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second model's version folder: the first is already in place
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(PublishError, match="rolled back"):
        _publish(repo, "b")
    monkeypatch.setattr(os, "rename", real_rename)
    assert snapshot(repo) == before


def test_prune_keeps_the_newest_versions(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for tag in "abcd":
        _publish(repo, tag)
    trash = tmp_path / "trash"
    trash.mkdir()
    assert prune_versions(repo, "m_classifier", 2, trash) == [1, 2]
    assert existing_versions(repo / "m_classifier") == [3, 4]
    assert not list(trash.iterdir())


def test_a_polling_reader_never_sees_a_partial_version(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _publish(repo, "seed")
    seen_partial: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for version in existing_versions(repo / "m_classifier"):
                folder = repo / "m_classifier" / str(version)
                try:
                    names = set(os.listdir(folder))
                except FileNotFoundError:
                    continue
                if names != {"model.onnx"}:
                    seen_partial.append(f"{version}: {sorted(names)}")

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for i in range(30):
            _publish(repo, f"v{i}")
    finally:
        stop.set()
        reader.join()
    assert existing_versions(repo / "m_classifier")[-1] == 31
    assert seen_partial == []


def test_a_model_folder_that_is_a_symlink_is_refused_and_nothing_is_written_through_it(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "m_classifier").symlink_to(elsewhere)
    with pytest.raises(PublishError, match="symbolic link"):
        _publish(repo, "a")
    assert list(elsewhere.iterdir()) == []


def test_a_config_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _publish(repo, "a")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    config = repo / "m" / "config.pbtxt"
    config.unlink()
    config.symlink_to(outside)
    with pytest.raises(PublishError, match="symbolic link"):
        _publish(repo, "b")
    assert outside.read_text() == "keep me"
