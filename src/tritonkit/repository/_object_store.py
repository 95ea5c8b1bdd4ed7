"""Model repositories in S3 and S3-compatible object stores (MinIO, Ceph, moto, …).

Triton reads ``s3://bucket/prefix`` (AWS) and ``s3://host:port/bucket/prefix`` (a custom endpoint,
plain HTTP unless written ``s3://https://host:port/…``) by itself; this module names those
locations as Triton parses them and publishes versions into them with boto3 (the ``[s3]`` extra).
Credentials and region come from the standard AWS variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION`` or ``AWS_REGION``), which
Triton reads too.

An object store has no rename and no folders: a version folder exists as soon as one object
below it does, and a polling Triton finds versions by listing. So a version is uploaded model by
model — the models an ensemble calls before the ensemble — and, within a model:

1. every file of the version folder;
2. the model-level files (``labels.txt``);
3. ``config.pbtxt``, last, with its version policy *pinned* (``version_policy { specific … }``) to
   the versions its own policy selects once the new one is in. A ``latest`` policy would pick up
   the new folder during step 1, half uploaded; a pinned config names it only when it is
   complete, so the config is the commit point.

Existing versions are never overwritten (:class:`VersionExistsError`, raised before anything is
uploaded), and a local version that would not load (see :mod:`._loadable`) is never uploaded.
A failed upload is undone newest first: restored files, then deleted objects (best effort: the
store has no transactions, and the pinned configs keep a leftover invisible).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from ._build import MANIFEST_FILENAME, BuildOptions, BuildResult, Progress, build_repository
from ._configs import parse_config, render_config
from ._errors import (
    BuildOptionsError,
    ObjectStoreError,
    ObjectStoreURLError,
    PublishError,
    RepositoryError,
    S3ExtraMissingError,
    VersionExistsError,
)
from ._loadable import check_loadable
from ._publish import CONFIG_FILENAME, existing_versions

SCHEME = "s3://"
# Triton's own pattern for a custom endpoint: s3://(http://|https://|)host:port/bucket(/path)*
_PROTOCOL = re.compile(r"(https?)://")
_ENDPOINT = re.compile(r"([0-9A-Za-z.\-]+):([0-9]+)")
_ENDPOINT_SEGMENT = re.compile(r"[0-9A-Za-z._\-]+")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")  # S3's rules; within Triton's [0-9a-z.-]+
_SKIPPED_FOLDERS = {"__pycache__"}  # byte code for the local server; Triton copies S3 models to a temp dir


@dataclass(frozen=True)
class ObjectStoreURL:
    """A place in an object store, as Triton reads ``--model-repository=s3://…``.

    ``host``/``port`` name a custom (S3-compatible) endpoint; without them the bucket is on AWS.
    """

    bucket: str
    prefix: str = ""
    host: str | None = None
    port: int | None = None
    scheme: str = "http"  # of the custom endpoint

    @property
    def endpoint_url(self) -> str | None:
        """The custom endpoint as boto3 takes it (``http://host:port``); None for AWS."""
        return None if self.host is None else f"{self.scheme}://{self.host}:{self.port}"

    def key(self, *parts: str) -> str:
        """The object key of ``parts`` below the prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def child(self, *parts: str) -> ObjectStoreURL:
        """The URL of ``parts`` below this one."""
        return dataclasses.replace(self, prefix=self.key(*parts))

    def __str__(self) -> str:
        endpoint = ""
        if self.host is not None:
            endpoint = ("https://" if self.scheme == "https" else "") + f"{self.host}:{self.port}/"
        return SCHEME + endpoint + "/".join(p for p in (self.bucket, self.prefix) if p)


def is_object_store_url(value: str | os.PathLike[str]) -> bool:
    """Whether ``value`` names an object store (``s3://…``) rather than a local folder."""
    return isinstance(value, str) and value.startswith(SCHEME)


def parse_object_store_url(url: str) -> ObjectStoreURL:
    """Parse ``s3://bucket/prefix`` or ``s3://[http(s)://]host:port/bucket/prefix`` the way Triton does.

    Repeated and trailing slashes are dropped (Triton drops them too). A URL that Triton would
    read differently from what it says — an endpoint path with characters outside Triton's
    pattern, which it would take for a bucket name — is refused.
    """
    if not url.startswith(SCHEME):
        raise ObjectStoreURLError(f"{url!r} is not an object-store URL: expected s3://bucket/prefix")
    rest = url[len(SCHEME) :]
    protocol = _PROTOCOL.match(rest)
    if protocol:
        rest = rest[protocol.end() :]
    parts = [part for part in rest.split("/") if part]
    if not parts:
        raise ObjectStoreURLError(f"{url!r} names no bucket: expected s3://bucket/prefix")
    host: str | None = None
    port: int | None = None
    endpoint = _ENDPOINT.fullmatch(parts[0])
    if endpoint:
        host, port = endpoint.group(1), int(endpoint.group(2))
        if not 0 < port < 65536:
            raise ObjectStoreURLError(f"{url!r}: port {port} is out of range")
        parts = parts[1:]
        if not parts:
            raise ObjectStoreURLError(
                f"{url!r} names an endpoint but no bucket: s3://host:port/bucket/prefix"
            )
    elif protocol:
        raise ObjectStoreURLError(
            f"{url!r}: {protocol.group(0)} only goes before a custom endpoint's host:port "
            "(s3://https://host:port/bucket/prefix)"
        )
    bucket, *folders = parts
    if not _BUCKET.fullmatch(bucket):
        raise ObjectStoreURLError(
            f"{url!r}: {bucket!r} is not an S3 bucket name (3 to 63 lowercase letters, digits, '.' and '-')"
        )
    for folder in folders:
        if folder in (".", ".."):
            raise ObjectStoreURLError(f"{url!r}: '.' and '..' are not folders in an object store")
        if host is not None and not _ENDPOINT_SEGMENT.fullmatch(folder):
            raise ObjectStoreURLError(
                f"{url!r}: with a custom endpoint Triton reads only folder names of letters, digits, "
                f"'.', '_' and '-'; {folder!r} would make it take {host}:{port} for the bucket"
            )
    return ObjectStoreURL(
        bucket=bucket,
        prefix="/".join(folders),
        host=host,
        port=port,
        scheme=protocol.group(1) if protocol else "http",
    )


def _as_url(url: str | ObjectStoreURL) -> ObjectStoreURL:
    return url if isinstance(url, ObjectStoreURL) else parse_object_store_url(url)


def object_store_client(url: str | ObjectStoreURL) -> Any:
    """A boto3 S3 client for ``url``: its endpoint, path-style addressing as Triton uses there.

    Raises :class:`S3ExtraMissingError` when boto3 is not installed.
    """
    target = _as_url(url)
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise S3ExtraMissingError(
            "object storage needs boto3, which is not installed: pip install 'tritonkit[s3]'"
        ) from exc
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None
    if region is None and target.host is not None:
        region = "us-east-1"  # S3-compatible stores accept any region; the signature needs one
    config = Config(
        s3={"addressing_style": "path"} if target.host is not None else {},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=10,
        read_timeout=60,
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=target.endpoint_url, region_name=region, config=config
    )


@contextlib.contextmanager
def _store_errors(action: str, error: type[RepositoryError] = ObjectStoreError) -> Iterator[None]:
    """Map boto3's errors, once, to ours: ``error(f"{action}: {why}")``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchBucket", "404"):
            why = "the bucket does not exist (create it first)"
        elif code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            why = f"access denied ({code}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        else:
            why = str(exc)
        raise error(f"{action}: {why}") from exc
    except BotoCoreError as exc:  # no credentials, endpoint unreachable, ...
        raise error(f"{action}: {exc}") from exc


def _require_bucket(client: Any, url: ObjectStoreURL) -> None:
    with _store_errors(f"cannot reach {url}"):
        client.head_bucket(Bucket=url.bucket)


def _subfolders(client: Any, url: ObjectStoreURL, *parts: str) -> list[str]:
    """Names of the "folders" directly below ``parts``."""
    prefix = url.key(*parts)
    prefix = f"{prefix}/" if prefix else ""
    names = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=url.bucket, Prefix=prefix, Delimiter="/"
    ):
        names += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
    return names


def _is_not_found(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code", "")) in (
        "NoSuchKey",
        "404",
    )


def _read(client: Any, url: ObjectStoreURL, key: str) -> bytes | None:
    """The object's bytes, or None when there is no such object."""
    try:
        response = client.get_object(Bucket=url.bucket, Key=key)
    except Exception as exc:
        if _is_not_found(exc):
            return None
        raise
    return bytes(response["Body"].read())


def object_store_models(url: str | ObjectStoreURL, *, client: Any = None) -> list[str]:
    """The models (folders holding a ``config.pbtxt``) in the repository at ``url``.

    Raises :class:`ObjectStoreError` when the bucket cannot be read.
    """
    target = _as_url(url)
    s3 = client if client is not None else object_store_client(target)
    _require_bucket(s3, target)
    with _store_errors(f"cannot list {target}"):
        folders = _subfolders(s3, target)
        return sorted(name for name in folders if _exists(s3, target, target.key(name, CONFIG_FILENAME)))


def _exists(client: Any, url: ObjectStoreURL, key: str) -> bool:
    try:
        client.head_object(Bucket=url.bucket, Key=key)
    except Exception as exc:
        if _is_not_found(exc):
            return False
        raise
    return True


def object_store_versions(url: str | ObjectStoreURL, model: str, *, client: Any = None) -> list[int]:
    """Version numbers that have objects under ``model`` in the repository at ``url``, ascending."""
    target = _as_url(url)
    s3 = client if client is not None else object_store_client(target)
    with _store_errors(f"cannot list {target.child(model)}"):
        return sorted(int(name) for name in _subfolders(s3, target, model) if name.isdigit())


def next_object_store_version(url: str | ObjectStoreURL, names: Sequence[str], *, client: Any = None) -> int:
    """One more than the highest version any of ``names`` has in the store, so models share a number."""
    target = _as_url(url)
    s3 = client if client is not None else object_store_client(target)
    return 1 + max((v for name in names for v in object_store_versions(target, name, client=s3)), default=0)


def pin_versions(config_text: str, versions: Sequence[int]) -> str:
    """``config_text`` with its version policy replaced by the versions it selects from ``versions``.

    ``latest {num_versions: k}`` (Triton's default) becomes the newest k, ``all`` all of them; a
    ``specific`` policy already names its versions and is returned unchanged.
    """
    config = parse_config(config_text)
    policy = config.version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "specific":
        return config_text
    available = sorted(set(versions))
    chosen = available if kind == "all" else available[-max(policy.latest.num_versions, 1) :]
    policy.Clear()
    policy.specific.versions.extend(chosen)
    return render_config(config)


@dataclass(frozen=True)
class ObjectStorePublication:
    """What :func:`publish_to_object_store` uploaded."""

    url: ObjectStoreURL
    version: int
    models: tuple[str, ...]
    keys: tuple[str, ...]  # every object written, in upload order

    @property
    def version_urls(self) -> list[str]:
        """``s3://…/MODEL/VERSION`` for each model published."""
        return [str(self.url.child(model, str(self.version))) for model in self.models]


@dataclass
class _ModelUpload:
    name: str
    version_files: list[tuple[str, Path]]
    model_files: list[tuple[str, bytes]]  # labels.txt, ..., then config.pbtxt


def publish_to_object_store(
    local_repo: str | os.PathLike[str],
    url: str | ObjectStoreURL,
    models: Sequence[str] | None = None,
    version: int | None = None,
    *,
    client: Any = None,
) -> ObjectStorePublication:
    """Upload ``version`` of ``models`` from ``local_repo`` into the repository at ``url``.

    ``models`` defaults to every model of ``local_repo``, ``version`` to the newest version all of
    them have. The version keeps its number in the store and must not be there yet
    (:class:`VersionExistsError`). See the module documentation for the upload order.
    """
    repo = Path(local_repo)
    target = _as_url(url)
    names = _publish_order(repo, _select_models(repo, models))
    number = version if version is not None else _newest_common_version(repo, names)
    missing = [name for name in names if not (repo / name / str(number)).is_dir()]
    if missing:
        raise PublishError(f"{repo} has no version {number} of {', '.join(missing)}")

    s3 = client if client is not None else object_store_client(target)
    _require_bucket(s3, target)
    stored = {name: object_store_versions(target, name, client=s3) for name in names}
    taken = [name for name in names if number in stored[name]]
    if taken:
        raise VersionExistsError(
            f"version {number} of {', '.join(taken)} is already in {target}; versions in an object "
            "store are never overwritten: publish another version number"
        )
    for name in names:
        # A version a polling Triton cannot load is retried, and its ensemble reloaded, every poll.
        check_loadable(repo / name, number)
    uploads = [_plan(repo, target, name, number, [*stored[name], number]) for name in names]

    from botocore.exceptions import BotoCoreError, ClientError

    written: list[str] = []
    undo: list[Callable[[], None]] = []
    try:
        for model in uploads:
            # Each undo step is registered before its write: a write that fails may still land.
            for key, path in model.version_files:
                undo.append(functools.partial(s3.delete_object, Bucket=target.bucket, Key=key))
                s3.upload_file(str(path), target.bucket, key)
                written.append(key)
            for key, data in model.model_files:  # config.pbtxt is the last of them
                previous = _read(s3, target, key)
                if previous == data:
                    continue
                undo.append(
                    functools.partial(s3.put_object, Bucket=target.bucket, Key=key, Body=previous)
                    if previous is not None
                    else functools.partial(s3.delete_object, Bucket=target.bucket, Key=key)
                )
                s3.put_object(Bucket=target.bucket, Key=key, Body=data)
                written.append(key)
    except BaseException as exc:
        left = _undo(undo)
        if isinstance(exc, (ClientError, BotoCoreError, OSError)):
            outcome = "rolled back" if not left else f"not fully rolled back ({left} steps failed)"
            raise PublishError(
                f"publishing version {number} into {target} failed and was {outcome}: {exc}"
            ) from exc
        raise
    return ObjectStorePublication(target, number, tuple(names), tuple(written))


def _undo(steps: list[Callable[[], None]]) -> int:
    """Run ``steps`` newest first; return how many failed."""
    failed = 0
    for step in reversed(steps):
        try:
            step()
        except Exception:
            failed += 1
    return failed


def _select_models(repo: Path, models: Sequence[str] | None) -> list[str]:
    present = sorted(p.parent.name for p in repo.glob(f"*/{CONFIG_FILENAME}"))
    if models is None:
        if not present:
            raise PublishError(f"{repo} holds no model (no */{CONFIG_FILENAME})")
        return present
    unknown = [name for name in models if name not in present]
    if unknown:
        raise PublishError(
            f"{repo} has no model {', '.join(unknown)}; it holds {', '.join(present) or 'no models'}"
        )
    return list(dict.fromkeys(models))


def _publish_order(repo: Path, names: Sequence[str]) -> list[str]:
    """Plain models by name, then ensembles, each after the models it calls (build-repo's order)."""
    calls: dict[str, set[str]] = {}
    for name in names:
        path = repo / name / CONFIG_FILENAME
        try:
            config = parse_config(path.read_text())
        except (text_format.ParseError, UnicodeDecodeError) as exc:
            raise PublishError(f"{path} is not a valid model config: {exc}") from exc
        calls[name] = {step.model_name for step in config.ensemble_scheduling.step} & set(names)
    order = sorted(name for name in names if not calls[name])
    waiting = sorted(name for name in names if calls[name])
    while waiting:
        ready = [name for name in waiting if calls[name] <= set(order)] or waiting  # a cycle: as is
        order += ready
        waiting = [name for name in waiting if name not in ready]
    return order


def _newest_common_version(repo: Path, names: Sequence[str]) -> int:
    common = set.intersection(*(set(existing_versions(repo / name)) for name in names))
    if not common:
        raise PublishError(f"{', '.join(names)} share no version in {repo}: pass the version to publish")
    return max(common)


def _plan(repo: Path, url: ObjectStoreURL, name: str, version: int, versions: list[int]) -> _ModelUpload:
    model_dir = repo / name
    version_dir = model_dir / str(version)
    version_files = [
        (url.key(name, str(version), *path.relative_to(version_dir).parts), path)
        for path in sorted(version_dir.rglob("*"))
        if path.is_file() and not _SKIPPED_FOLDERS & set(path.relative_to(version_dir).parts)
    ]
    if not version_files:
        raise PublishError(f"{version_dir} is empty: an object store has no empty folders")
    model_files = [
        (url.key(name, path.name), path.read_bytes())
        for path in sorted(model_dir.iterdir())
        if path.is_file() and path.name != CONFIG_FILENAME and not path.name.startswith(".")
    ]
    config = pin_versions((model_dir / CONFIG_FILENAME).read_text(), versions)
    model_files.append((url.key(name, CONFIG_FILENAME), config.encode()))
    return _ModelUpload(name, version_files, model_files)


@dataclass(frozen=True)
class ObjectStoreBuild:
    """What :func:`build_to_object_store` did."""

    build: BuildResult  # the conversion and its checks; ``repository`` was a staging folder, now removed
    publication: ObjectStorePublication


def build_to_object_store(
    source: str | os.PathLike[str],
    options: BuildOptions,
    url: str | ObjectStoreURL,
    progress: Progress | None = None,
    *,
    client: Any = None,
) -> ObjectStoreBuild:
    """:func:`build_repository` into a local staging folder, then publish the version to ``url``.

    The version number is one more than the highest the models have in the store.
    ``options.repository`` is not used; ``progress`` also gets ``"upload"``.
    """
    target = _as_url(url)
    if options.keep is not None:
        raise BuildOptionsError(
            "--keep prunes a local repository; remove old versions from object storage with the "
            "store's own tools"
        )
    s3 = client if client is not None else object_store_client(target)
    _require_bucket(s3, target)  # before the conversion, which can take minutes
    with tempfile.TemporaryDirectory(prefix="tritonkit-s3-") as work:
        staging = Path(work) / "repository"
        build = build_repository(source, dataclasses.replace(options, repository=staging), progress)
        if progress:
            progress("upload")
        number = next_object_store_version(target, build.models, client=s3)
        if number != build.version:
            _renumber(staging, build.models, build.version, number)
        publication = publish_to_object_store(staging, target, build.models, number, client=s3)
    return ObjectStoreBuild(dataclasses.replace(build, version=number), publication)


def _renumber(repo: Path, names: Sequence[str], old: int, new: int) -> None:
    """Give a staged version the number it will have in the store (folder and manifest)."""
    for name in names:
        version_dir = repo / name / str(new)
        os.rename(repo / name / str(old), version_dir)
        manifest = version_dir / MANIFEST_FILENAME
        if manifest.is_file():
            data = json.loads(manifest.read_text())
            data["version"] = new
            manifest.write_text(json.dumps(data, indent=2) + "\n")


__all__ = [
    "ObjectStoreBuild",
    "ObjectStorePublication",
    "ObjectStoreURL",
    "build_to_object_store",
    "is_object_store_url",
    "next_object_store_version",
    "object_store_client",
    "object_store_models",
    "object_store_versions",
    "parse_object_store_url",
    "pin_versions",
    "publish_to_object_store",
]
