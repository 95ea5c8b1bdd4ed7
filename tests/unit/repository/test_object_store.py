"""Object-store URLs read as Triton reads them, pinned version policies, and boto3 as an extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tritonkit.repository import (
    ObjectStoreURL,
    ObjectStoreURLError,
    RepositoryError,
    S3ExtraMissingError,
    is_object_store_url,
    object_store_client,
    parse_config,
    parse_object_store_url,
    pin_versions,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://models", ObjectStoreURL("models")),
        ("s3://models/prod/vision", ObjectStoreURL("models", "prod/vision")),
        (
            "s3://models//prod///vision/",
            ObjectStoreURL("models", "prod/vision"),
        ),  # Triton drops extra slashes
        ("s3://127.0.0.1:9000/models/repo", ObjectStoreURL("models", "repo", "127.0.0.1", 9000, "http")),
        ("s3://minio.local:443/my-bucket", ObjectStoreURL("my-bucket", "", "minio.local", 443, "http")),
        (
            "s3://https://minio.local:443/b.e-t/a_b/c.d",
            ObjectStoreURL("b.e-t", "a_b/c.d", "minio.local", 443, "https"),
        ),
        ("s3://http://localhost:9000/models/", ObjectStoreURL("models", "", "localhost", 9000, "http")),
    ],
)
def test_urls_parse_into_bucket_prefix_and_endpoint_as_triton_reads_them(
    url: str, expected: ObjectStoreURL
) -> None:
    assert parse_object_store_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "s3://models/prod/vision",
        "s3://127.0.0.1:9000/models/repo",
        "s3://https://minio.local:9443/models/repo",
        "s3://models",
    ],
)
def test_a_parsed_url_prints_back_as_written(url: str) -> None:
    assert str(parse_object_store_url(url)) == url


def test_endpoint_keys_and_children() -> None:
    aws = parse_object_store_url("s3://models/prod")
    local = parse_object_store_url("s3://127.0.0.1:9000/models/prod")
    secure = parse_object_store_url("s3://https://minio.local:9443/models")

    assert aws.endpoint_url is None
    assert local.endpoint_url == "http://127.0.0.1:9000"  # Triton's default for a custom endpoint
    assert secure.endpoint_url == "https://minio.local:9443"
    assert local.key("tiny", "1", "model.onnx") == "prod/tiny/1/model.onnx"
    assert secure.key("tiny", "config.pbtxt") == "tiny/config.pbtxt"
    assert str(local.child("tiny", "2")) == "s3://127.0.0.1:9000/models/prod/tiny/2"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("/models/repo", "not an object-store URL"),
        ("gs://models/repo", "not an object-store URL"),
        ("s3://", "names no bucket"),
        ("s3:///", "names no bucket"),
        ("s3://127.0.0.1:9000", "no bucket"),
        ("s3://127.0.0.1:99999/models", "out of range"),
        ("s3://https://models/repo", "custom endpoint"),
        ("s3://Models/repo", "not an S3 bucket name"),
        ("s3://my_bucket/repo", "not an S3 bucket name"),
        ("s3://ab/repo", "not an S3 bucket name"),
        ("s3://models/../other", "'..'"),
        ("s3://127.0.0.1:9000/models/my repo", "would make it take 127.0.0.1:9000 for the bucket"),
        ("s3://127.0.0.1:9000/models/a+b", "would make it take"),
    ],
)
def test_urls_triton_would_misread_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(ObjectStoreURLError, match=why) as caught:
        parse_object_store_url(url)
    assert isinstance(caught.value, RepositoryError) and isinstance(caught.value, ValueError)


def test_only_s3_strings_are_object_store_urls() -> None:
    from pathlib import Path

    assert is_object_store_url("s3://models/repo")
    assert not is_object_store_url("model_repository")
    assert not is_object_store_url(Path("s3:/models"))


CONFIG = 'name: "tiny"\nbackend: "python"\nmax_batch_size: 8\n'


@pytest.mark.parametrize(
    ("policy", "versions", "pinned"),
    [
        ("", [1, 3, 2], [3]),  # no policy: Triton's default, the newest one
        ("version_policy { latest { num_versions: 1 } }", [1, 2], [2]),
        ("version_policy { latest { num_versions: 2 } }", [4, 1, 7], [4, 7]),
        ("version_policy { all { } }", [2, 1], [1, 2]),
    ],
)
def test_pinning_names_the_versions_the_policy_selects(
    policy: str, versions: list[int], pinned: list[int]
) -> None:
    text = pin_versions(CONFIG + policy, versions)

    config = parse_config(text)
    assert list(config.version_policy.specific.versions) == pinned
    assert config.name == "tiny" and config.max_batch_size == 8 and config.backend == "python"


def test_a_specific_policy_is_kept_as_written() -> None:
    text = CONFIG + "version_policy { specific { versions: [1, 3] } }\n"
    assert pin_versions(text, [1, 2, 3, 4]) == text


def test_a_missing_boto3_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError

    with pytest.raises(S3ExtraMissingError, match=r"pip install 'tritonkit\[s3\]'"):
        object_store_client("s3://models/repo")


class _EmptyBucket:
    """Just enough of a boto3 S3 client for an empty bucket; records every write."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def head_bucket(self, **_: object) -> None:
        return None

    def get_paginator(self, _name: str) -> _EmptyBucket:
        return self

    def paginate(self, **_: object) -> list[dict[str, object]]:
        return [{}]

    def upload_file(self, _path: str, _bucket: str, key: str) -> None:
        self.writes.append(key)

    def put_object(self, *, Key: str, **_: object) -> None:
        self.writes.append(Key)


def test_a_local_version_that_would_not_load_is_never_uploaded(tmp_path: Path) -> None:
    from testsupport import make_onnx_classifier
    from tritonkit.repository import BuildOptions, PublishError, build_repository, publish_to_object_store

    repo = tmp_path / "repo"
    build_repository(make_onnx_classifier(tmp_path / "tiny.onnx"), BuildOptions(name="tiny", repository=repo))
    model = repo / "tiny_classifier" / "1" / "model.onnx"
    model.write_bytes(model.read_bytes()[:100])  # damaged on disk after it was built
    bucket = _EmptyBucket()

    with pytest.raises(PublishError, match=r"tiny_classifier version 1: model\.onnx does not load"):
        publish_to_object_store(repo, "s3://models/repo", client=bucket)
    assert bucket.writes == []
