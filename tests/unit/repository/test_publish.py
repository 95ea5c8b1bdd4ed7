"""Publishing versions: never overwrite, never half-visible, roll back on failure."""

from __future__ import annotations

import errno
import functools
import os
import tempfile
import threading
import zlib
from pathlib import Path

import pytest

from testsupport import make_onnx_classifier
from tritonkit.repository import PublishError, existing_versions, next_version
from tritonkit.repository import _publish as publish_module
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


@functools.cache
def _onnx(tag: str) -> bytes:
    """A real ONNX model, different per tag: the publisher refuses files onnxruntime cannot load."""
    with tempfile.TemporaryDirectory() as folder:
        return make_onnx_classifier(Path(folder) / "m.onnx", seed=zlib.crc32(tag.encode())).read_bytes()


def _models(tag: str) -> list[StagedModel]:
    return [
        StagedModel(
            "m_classifier",
            f'name: "m_classifier" # {tag}\n',
            {"model.onnx": _onnx(tag)},
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
    assert (repo / "m_classifier" / "1" / "model.onnx").read_bytes() == _onnx("a")
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
    assert (repo / "m_classifier" / "2" / "model.onnx").read_bytes() == _onnx("b")
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


def _publish_models(repo: Path, models: list[StagedModel]) -> int:
    with repository_lock(repo) as root:
        version = next_version(repo, [m.name for m in models])
        staging = root / "stage-test"
        stage_models(staging, models, version)
        publish_staged(repo, staging, models, version)
    return version


def test_a_staged_model_onnx_that_does_not_load_is_refused_before_anything_moves(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _publish(repo, "a")
    before = snapshot(repo)
    models = _models("b")
    truncated = _onnx("b")[: len(_onnx("b")) // 2]  # what a copy cut short leaves behind
    models[0].version_files["model.onnx"] = truncated
    with pytest.raises(
        PublishError, match=r"m_classifier version 2: model\.onnx does not load in onnxruntime"
    ):
        _publish_models(repo, models)
    assert snapshot(repo) == before


def test_a_config_naming_tensors_the_onnx_model_lacks_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    config = 'name: "m_classifier" backend: "python" input { name: "pixels" data_type: TYPE_FP32 dims: 3 }'
    model = StagedModel("m_classifier", config, {"model.onnx": _onnx("a"), "model.py": b"X = 1\n"})
    with pytest.raises(PublishError, match=r"names inputs \['pixels'\] that model.onnx does not have"):
        _publish_models(repo, [model])
    assert snapshot(repo) == {}


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (StagedModel("m", 'name: "m" backend: "python"', {"model.onnx": _onnx("a")}), "model.py is missing"),
        (
            StagedModel("m", 'name: "m" platform: "onnxruntime_onnx"', {"x.txt": b"1"}),
            "model.onnx is missing",
        ),
        (StagedModel("m", 'name: "other"', {"x.txt": b"1"}), "names the model 'other'"),
        (StagedModel("m", 'name: "m" max_batch_sise: 4', {"x.txt": b"1"}), "not a valid model config"),
        (StagedModel("m", 'name: "m" platform: "ensemble"', {}), "version folder is empty"),
    ],
)
def test_a_version_triton_would_not_load_is_refused_with_the_reason(
    tmp_path: Path, model: StagedModel, message: str
) -> None:
    repo = tmp_path / "repo"
    with pytest.raises(PublishError, match=message):
        _publish_models(repo, [model])
    assert snapshot(repo) == {}


def test_a_staged_file_that_cannot_be_written_is_a_publish_error_and_the_repository_is_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    _publish(repo, "a")
    before = snapshot(repo)

    def disk_full(source: object, target: Path) -> None:
        Path(target).write_bytes(b"\x08")  # half a file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(publish_module.shutil, "copyfile", disk_full)
    source = tmp_path / "model.onnx"
    source.write_bytes(_onnx("b"))
    models = _models("b")
    models[0].version_files["model.onnx"] = source
    with pytest.raises(PublishError, match=r"nothing was published: .*No space left on device"):
        _publish_models(repo, models)
    assert snapshot(repo) == before


def test_the_staging_folder_of_a_killed_publish_is_removed_by_the_next_one(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _publish(repo, "a")
    root = publish_module.staging_root(repo)
    stale = root / "stage-killed" / "m_classifier" / "2"
    stale.mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"half")
    unrelated = root / "work-other-build"  # a concurrent build's conversion folder: not ours to remove
    unrelated.mkdir()
    assert _publish(repo, "b") == 2
    assert not (root / "stage-killed").exists()
    assert unrelated.is_dir()
