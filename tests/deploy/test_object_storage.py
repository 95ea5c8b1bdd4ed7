"""Model repositories in S3-compatible object storage: build into it, publish into it, serve from it.

A local S3 emulator (moto's server, on a free loopback port) stands in for the store; the
embedded ``tritonserver`` reads it through a custom endpoint, ``s3://127.0.0.1:PORT/bucket/prefix``,
with credentials from the standard AWS variables, as stock Triton does in the Kubernetes s3 overlay.

An object store has no rename: a version folder exists once one object is in it. What keeps a
polling Triton from loading half a version is the upload order (version files, model files,
config last) with configs that pin their versions — checked here after every single write.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from testsupport import make_onnx_classifier
from tritonkit.cli import app
from tritonkit.repository import (
    BuildOptions,
    PublishError,
    VersionExistsError,
    build_repository,
    object_store_client,
    parse_config,
    parse_object_store_url,
    publish_to_object_store,
)
from tritonkit.server import EmbeddedServer, ServerOptions, free_port

AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # never ask a metadata service for anything
}
LABELS = "circle\nsquare\ntriangle\nstar\n"
runner = CliRunner()


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a moto S3 server (moto[server], the [dev] extra) for this module only.

    The AWS variables point boto3 and tritonserver at fake credentials and at no config file.
    """
    nowhere = tmp_path_factory.mktemp("aws") / "none"
    with pytest.MonkeyPatch.context() as env:
        for name, value in AWS_ENVIRONMENT.items():
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL"):
            env.delenv(name, raising=False)
        env.setenv("AWS_CONFIG_FILE", str(nowhere))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
        port = free_port()
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
                    break
                except (urllib.error.URLError, OSError):
                    if time.monotonic() > deadline or server.poll() is not None:
                        pytest.fail("moto_server did not start")
                    time.sleep(0.1)
            yield f"127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=10)


@pytest.fixture
def repo_url(s3_endpoint: str) -> str:
    """``s3://127.0.0.1:PORT/BUCKET/repo`` in a new, empty bucket."""
    bucket = f"models-{uuid.uuid4().hex[:12]}"
    url = f"s3://{s3_endpoint}/{bucket}/repo"
    object_store_client(url).create_bucket(Bucket=bucket)
    return url


@pytest.fixture
def local_repo(tmp_path: Path) -> Path:
    """A local tritonkit repository with versions 1 and 2 of ``tiny`` (labels included)."""
    labels = tmp_path / "labels.txt"
    labels.write_text(LABELS)
    repo = tmp_path / "repo"
    for seed in (1, 2):
        model = make_onnx_classifier(tmp_path / f"v{seed}.onnx", seed=seed)
        build_repository(model, BuildOptions(name="tiny", repository=repo, labels=labels))
    return repo


def _objects(url: str, client: Any = None) -> dict[str, tuple[str, Any]]:
    """Every object in the URL's bucket: key -> (ETag, LastModified)."""
    target = parse_object_store_url(url)
    client = client or object_store_client(target)
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = (item["ETag"], item["LastModified"])
    return found


def _version_files(repo: Path) -> dict[tuple[str, int], set[str]]:
    """(model, version) -> the files a complete upload of that version holds, relative to its folder."""
    return {
        (version_dir.parent.name, int(version_dir.name)): {
            p.relative_to(version_dir).as_posix()
            for p in version_dir.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        for version_dir in repo.glob("*/[0-9]*")
    }


def _assert_configs_name_only_complete_versions(
    url: str, expected: dict[tuple[str, int], set[str]], client: Any
) -> None:
    """What a polling Triton would read now: every version a config names has all its files."""
    target = parse_object_store_url(url)
    keys = {key.removeprefix(target.prefix + "/") for key in _objects(url, client)}
    for config_key in sorted(k for k in keys if k.endswith("/config.pbtxt")):
        model = config_key.split("/")[0]
        text = client.get_object(Bucket=target.bucket, Key=f"{target.prefix}/{config_key}")["Body"].read()
        policy = parse_config(text.decode()).version_policy
        assert policy.WhichOneof("policy_choice") == "specific", f"{model}: config does not pin its versions"
        for version in policy.specific.versions:
            present = {
                k.removeprefix(f"{model}/{version}/") for k in keys if k.startswith(f"{model}/{version}/")
            }
            assert present == expected[(model, version)], (
                f"{model} names version {version} before it is complete"
            )


class RecordingClient:
    """A boto3 S3 client that records every object written and calls ``after_write`` after each."""

    def __init__(self, client: Any, after_write: Callable[[str], None] | None = None) -> None:
        self._client = client
        self._after_write = after_write
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def upload_file(self, filename: str, bucket: str, key: str, *args: Any, **kwargs: Any) -> None:
        self._client.upload_file(filename, bucket, key, *args, **kwargs)
        self._wrote(key)

    def put_object(self, **kwargs: Any) -> Any:
        response = self._client.put_object(**kwargs)
        self._wrote(kwargs["Key"])
        return response

    def _wrote(self, key: str) -> None:
        self.writes.append(key)
        if self._after_write:
            self._after_write(key)


def test_publish_uploads_version_files_then_labels_then_config_and_a_reader_never_sees_half_a_version(
    local_repo: Path, repo_url: str
) -> None:
    expected = _version_files(local_repo)
    target = parse_object_store_url(repo_url)
    reader = object_store_client(target)
    for version in (1, 2):
        client = RecordingClient(
            object_store_client(target),
            after_write=lambda _key: _assert_configs_name_only_complete_versions(repo_url, expected, reader),
        )
        publication = publish_to_object_store(local_repo, repo_url, version=version, client=client)

        assert publication.version == version
        assert publication.models == ("tiny_classifier", "tiny_preprocess", "tiny")
        assert list(publication.keys) == client.writes
        written = [key.removeprefix(target.prefix + "/").split("/", 1) for key in client.writes]
        models_in_order = list(dict.fromkeys(model for model, _ in written))
        assert models_in_order == ["tiny_classifier", "tiny_preprocess", "tiny"]  # one model after another
        for model in models_in_order:
            files = [path for name, path in written if name == model]
            version_part = [p for p in files if p.startswith(f"{version}/")]
            assert set(version_part) == {f"{version}/{f}" for f in expected[(model, version)]}
            assert files[: len(version_part)] == version_part  # the version folder first, ...
            assert files[-1] == "config.pbtxt"  # ... the config last
            if model != "tiny_preprocess":  # labels go beside the classifier's and the ensemble's config
                assert ("labels.txt" in files) == (version == 1)  # unchanged labels are not rewritten
    classifier = target.key("tiny_classifier", "config.pbtxt")
    config = object_store_client(target).get_object(Bucket=target.bucket, Key=classifier)["Body"].read()
    assert list(parse_config(config.decode()).version_policy.specific.versions) == [2]


def test_publish_cli_uploads_the_newest_version_file_by_file_then_each_config_and_nothing_else(
    local_repo: Path, repo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tritonkit publish LOCAL_REPO s3://...`` as a user types it, against the moto server.

    The CLI builds its own boto3 client; the factory it calls is wrapped (not replaced) so that
    every object the real client writes is recorded and the store is read back after each write.
    """
    from tritonkit.repository import _object_store

    expected = _version_files(local_repo)
    target = parse_object_store_url(repo_url)
    reader = object_store_client(target)
    clients: list[RecordingClient] = []
    real_factory = _object_store.object_store_client

    def recording_factory(url: Any) -> RecordingClient:
        client = RecordingClient(
            real_factory(url),
            after_write=lambda _key: _assert_configs_name_only_complete_versions(repo_url, expected, reader),
        )
        clients.append(client)
        return client

    monkeypatch.setattr(_object_store, "object_store_client", recording_factory)
    result = runner.invoke(app, ["publish", str(local_repo), repo_url], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "version 2 published" in result.output  # the newest version all three models have
    for model in ("tiny_classifier", "tiny_preprocess", "tiny"):
        assert f"{repo_url}/{model}/2" in result.output
    assert f"tritonkit serve --repo {repo_url}" in result.output
    (client,) = clients
    relative = [key.removeprefix(target.prefix + "/") for key in client.writes]
    assert len(relative) == len(set(relative)), "an object was written twice"
    counted = re.search(r"objects\W+(\d+)", result.output)
    assert counted and int(counted.group(1)) == len(relative)
    assert list(dict.fromkeys(key.split("/", 1)[0] for key in relative)) == [
        "tiny_classifier",
        "tiny_preprocess",
        "tiny",
    ]
    for model in ("tiny_classifier", "tiny_preprocess", "tiny"):
        files = [key.split("/", 1)[1] for key in relative if key.split("/", 1)[0] == model]
        version_part = {f"2/{name}" for name in expected[(model, 2)]}
        assert set(files[: len(version_part)]) == version_part  # the whole version folder first
        assert files[-1] == "config.pbtxt"  # the config last
        assert set(files) - version_part - {"config.pbtxt"} == (
            set() if model == "tiny_preprocess" else {"labels.txt"}
        )

    stored = _objects(repo_url)
    assert {key.removeprefix(target.prefix + "/") for key in stored} == set(relative)  # nothing else
    assert not any("/1/" in key for key in stored), "version 1 was not asked for"
    for key in relative:
        body = reader.get_object(Bucket=target.bucket, Key=target.key(key))["Body"].read()
        model, rest = key.split("/", 1)
        if rest.startswith("2/") or rest == "labels.txt":
            assert body == (local_repo / key).read_bytes(), key
        else:
            policy = parse_config(body.decode()).version_policy
            assert list(policy.specific.versions) == [2], f"{key} must pin the published version"


def test_publish_refuses_to_overwrite_an_existing_version(local_repo: Path, repo_url: str) -> None:
    publish_to_object_store(local_repo, repo_url, version=1)
    before = _objects(repo_url)
    (local_repo / "tiny_classifier" / "1" / "model.onnx").write_bytes(b"not the published model")

    with pytest.raises(VersionExistsError, match="version 1 of tiny_classifier, tiny_preprocess, tiny"):
        publish_to_object_store(local_repo, repo_url, version=1)
    result = runner.invoke(app, ["publish", str(local_repo), repo_url, "--version", "1", "-m", "tiny"])

    assert result.exit_code == 1
    assert "already in" in result.output and "never overwritten" in result.output
    assert _objects(repo_url) == before


def test_a_failed_upload_is_rolled_back(local_repo: Path, repo_url: str) -> None:
    publish_to_object_store(local_repo, repo_url, version=1)
    before = {key: etag for key, (etag, _) in _objects(repo_url).items()}

    def fail_at_the_ensemble_config(key: str) -> None:
        if key.endswith("repo/tiny/config.pbtxt"):  # it lands, but the client reports a failure
            raise OSError("connection reset")

    client = RecordingClient(object_store_client(repo_url), after_write=fail_at_the_ensemble_config)
    client.writes.clear()
    with pytest.raises(PublishError, match="rolled back"):
        publish_to_object_store(local_repo, repo_url, version=2, client=client)

    assert any(key.endswith("tiny_classifier/config.pbtxt") for key in client.writes)  # had been switched
    assert {key: etag for key, (etag, _) in _objects(repo_url).items()} == before


def test_serve_refuses_an_s3_repository_it_cannot_read(s3_endpoint: str, repo_url: str) -> None:
    missing = runner.invoke(app, ["serve", "--repo", f"s3://{s3_endpoint}/no-such-bucket/repo"])
    empty = runner.invoke(app, ["serve", "--repo", repo_url])

    assert missing.exit_code == 1 and "bucket does not exist" in missing.output
    assert empty.exit_code == 1 and "holds no model" in empty.output


def test_build_repo_into_s3_refuses_keep_and_a_missing_bucket_before_converting(
    s3_endpoint: str, repo_url: str, tmp_path: Path
) -> None:
    model = make_onnx_classifier(tmp_path / "tiny.onnx")
    missing = f"s3://{s3_endpoint}/no-such-bucket/repo"

    keep = runner.invoke(app, ["build-repo", str(model), "-n", "tiny", "--repo", repo_url, "--keep", "2"])
    nowhere = runner.invoke(app, ["build-repo", str(model), "-n", "tiny", "--repo", missing])

    assert keep.exit_code == 1 and "--keep prunes a local repository" in keep.output
    assert nowhere.exit_code == 1 and "bucket does not exist" in nowhere.output
    assert "Converting" not in nowhere.output


def test_server_gives_triton_the_s3_url_and_the_region_it_reads(
    repo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    server = EmbeddedServer(ServerOptions(repository=repo_url))

    assert f"--model-repository={repo_url}" in server.command()
    assert server.environment()["AWS_DEFAULT_REGION"] == "eu-west-3"


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _scores(client: Any, image: bytes) -> np.ndarray:
    import tritonclient.http as httpclient

    tensor = httpclient.InferInput("IMAGE", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[image]], dtype=np.object_))
    return np.asarray(client.infer("tiny", [tensor]).as_numpy("SCORES"))


@pytest.mark.integration
def test_build_repo_into_s3_serves_from_it_and_a_second_build_adds_version_2(
    repo_url: str, tmp_path: Path
) -> None:
    import tritonclient.http as httpclient

    labels = tmp_path / "labels.txt"
    labels.write_text(LABELS)
    first = make_onnx_classifier(tmp_path / "v1.onnx", seed=1)
    second = make_onnx_classifier(tmp_path / "v2.onnx", seed=2)
    build = ["build-repo", "--name", "tiny", "--repo", repo_url, "--labels", str(labels)]

    built = runner.invoke(app, [*build[:1], str(first), *build[1:]])
    assert built.exit_code == 0, built.output
    assert "tiny version 1" in built.output
    assert f"{repo_url}/tiny_classifier/1" in built.output
    assert f"tritonkit serve --repo {repo_url}" in built.output

    options = ServerOptions(
        repository=repo_url,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        model_control_mode="poll",
        poll_interval_s=1,
        log_file=tmp_path / "tritonserver.log",
    )
    image = _png((200, 40, 40))
    with EmbeddedServer(options) as server:
        client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
        try:
            before = _scores(client, image)
            assert before.shape == (1, 4) and float(before.sum()) == pytest.approx(1.0, abs=1e-5)
            version_1 = {k: v for k, v in _objects(repo_url).items() if "/1/" in k}

            rebuilt = runner.invoke(app, [*build[:1], str(second), *build[1:]])
            assert rebuilt.exit_code == 0, rebuilt.output
            assert "tiny version 2" in rebuilt.output
            assert {k: v for k, v in _objects(repo_url).items() if "/1/" in k} == version_1

            deadline = time.monotonic() + 30
            while not client.is_model_ready("tiny_classifier", "2"):
                assert time.monotonic() < deadline, server.log_text()[-3000:]
                time.sleep(0.2)
            after = _scores(client, image)
            assert after.shape == (1, 4) and not np.allclose(after, before)  # the new weights answer
        finally:
            client.close()


@pytest.mark.integration
def test_serve_cli_serves_an_s3_repository_and_answers_an_inference(repo_url: str, tmp_path: Path) -> None:
    """`tritonkit serve --repo s3://host:port/bucket/prefix` as a user runs it, on the console script.

    The repository is built into the moto server with ``--target embedded`` (the embedded binary
    has no onnxruntime backend); the server process reads it with the AWS variables set above.
    """
    import tritonclient.http as httpclient

    from testsupport.processes import read_until_ready, running, serve_command

    labels = tmp_path / "labels.txt"
    labels.write_text(LABELS)
    model = make_onnx_classifier(tmp_path / "tiny.onnx", seed=3)
    build = ["build-repo", str(model), "-n", "tiny", "--repo", repo_url, "--labels", str(labels)]
    built = runner.invoke(app, [*build, "--target", "embedded"])
    assert built.exit_code == 0, built.output

    http_port = free_port()
    args = [*serve_command(repo_url, http_port), "--log-file", str(tmp_path / "tritonserver.log")]
    with running(args) as process:  # inherits the AWS variables of the s3_endpoint fixture
        output = read_until_ready(process)
        assert f"Triton is ready serving {repo_url}" in output, output
        assert f"http://127.0.0.1:{http_port}" in output
        client = httpclient.InferenceServerClient(f"127.0.0.1:{http_port}")
        try:
            assert client.is_model_ready("tiny")
            scores = _scores(client, _png((40, 200, 40)))
        finally:
            client.close()
        assert scores.shape == (1, 4) and float(scores.sum()) == pytest.approx(1.0, abs=1e-5)

        process.terminate()
        assert process.wait(timeout=60) == 0
        assert process.stdout is not None
        assert "Stopping Triton" in process.stdout.read()
