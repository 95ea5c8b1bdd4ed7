"""The embedded Triton: the ``tritonserver`` that nvidia-pytriton ships, run as a child process."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from ._distribution import TritonDistribution, locate_distribution
from ._errors import ServerError, ServerStartError
from ._ports import ensure_ports_free
from ._reaper import Reaper, new_shm_prefix, remove_regions, remove_stale_shared_memory
from ._watchdog import HealEvent, StubWatchdog

ModelControlMode = Literal["none", "poll", "explicit"]
MODEL_CONTROL_MODES: tuple[str, ...] = ("none", "poll", "explicit")
# APIs that change what the server runs or reads: with them open, anyone who reaches the HTTP port
# can upload a model.py and have the server execute it (EXPLICIT mode), or map shared memory.
RESTRICTED_APIS: tuple[str, ...] = ("model-repository", "shared-memory", "trace", "logging")
ADMIN_KEY_HEADER = "admin-key"
OBJECT_STORE_SCHEME = "s3://"


@dataclass(frozen=True)
class GrpcTls:
    """TLS for the gRPC endpoint: the server's certificate and key, and optionally the CA that
    client certificates must chain to (mutual TLS)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def __post_init__(self) -> None:
        for role, path in (("certificate", self.cert), ("key", self.key), ("client CA", self.client_ca)):
            if path is not None and not Path(path).is_file():
                raise ValueError(f"gRPC TLS {role} {path} is not a file")

    def arguments(self) -> list[str]:
        args = [f"--grpc-server-cert={self.cert}", f"--grpc-server-key={self.key}"]
        if self.client_ca:
            return [*args, "--grpc-use-ssl-mutual=true", f"--grpc-root-cert={self.client_ca}"]
        return [*args, "--grpc-use-ssl=true"]


@dataclass(frozen=True)
class ServerOptions:
    """How to run the embedded server. Binds to loopback unless ``host`` says otherwise."""

    # A local folder, or an ``s3://[host:port/]bucket/prefix`` URL (a str) that Triton reads itself.
    repository: Path | str
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    model_control_mode: str = "none"
    poll_interval_s: int = 2
    load_models: tuple[str, ...] = ()
    log_verbose: int = 0
    exit_timeout_s: int = 10
    log_file: Path | None = None
    admin_key: str | None = None
    grpc_tls: GrpcTls | None = None
    heal: bool = True
    die_with_parent: bool = False
    restricted_apis: tuple[str, ...] = RESTRICTED_APIS
    # SageMaker's contract (GET /ping, POST /invocations) on this port. Triton binds it on all
    # interfaces whatever ``host`` says: it has no address option for that front end.
    sagemaker_port: int | None = None
    sagemaker_default_model: str | None = None  # the model /invocations runs
    extra_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def repository_in_object_store(self) -> bool:
        """Whether ``repository`` is an ``s3://`` URL rather than a local folder."""
        return isinstance(self.repository, str) and self.repository.startswith(OBJECT_STORE_SCHEME)

    def __post_init__(self) -> None:
        if self.model_control_mode not in MODEL_CONTROL_MODES:
            raise ValueError(
                f"model control mode must be one of {', '.join(MODEL_CONTROL_MODES)}, "
                f"got {self.model_control_mode!r}"
            )
        if self.load_models and self.model_control_mode != "explicit":
            raise ValueError("load_models only applies to model_control_mode='explicit'")
        if self.sagemaker_default_model and self.sagemaker_port is None:
            raise ValueError("sagemaker_default_model only applies with a sagemaker_port")


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so a killed ``serve`` leaves no orphan.

    Linux delivers it when the *thread* that forked exits, so only a long-lived main thread
    (the CLI) should ask for it.
    """
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


class EmbeddedServer:
    """Start, watch and stop one tritonserver process on a model repository.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Stopping always ends the
    whole process group (backend stubs included) and removes the Python backend's shared-memory
    regions, however the server ended. If this process dies without stopping the server
    (``kill -9``, a crash), a reaper process started beside it does the same (see ``_reaper``).
    """

    def __init__(self, options: ServerOptions, distribution: TritonDistribution | None = None) -> None:
        self.options = options
        self._distribution = distribution
        self._process: subprocess.Popen[bytes] | None = None
        self._shm_prefix = new_shm_prefix()
        self._reaper: Reaper | None = None
        self._log_path: Path | None = options.log_file
        self._watchdog: StubWatchdog | None = None
        self.on_heal: Callable[[HealEvent], None] | None = None

    # -- addresses -------------------------------------------------------------------------
    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.options.host in ("0.0.0.0", "") else self.options.host

    @property
    def http_url(self) -> str:
        return f"http://{self._client_host}:{self.options.http_port}"

    @property
    def grpc_url(self) -> str:
        scheme = "grpcs" if self.options.grpc_tls else "grpc"
        return f"{scheme}://{self._client_host}:{self.options.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self._client_host}:{self.options.metrics_port}/metrics"

    @property
    def sagemaker_url(self) -> str | None:
        """The SageMaker front end (``/ping``, ``/invocations``), when enabled."""
        port = self.options.sagemaker_port
        return None if port is None else f"http://127.0.0.1:{port}"

    @property
    def log_path(self) -> Path | None:
        """The file that receives tritonserver's output."""
        return self._log_path

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        """Everything tritonserver has written so far."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")

    def command(self) -> list[str]:
        """The tritonserver command line this server runs."""
        dist = self._dist()
        opts = self.options
        cmd = [
            str(dist.binary),
            f"--model-repository={opts.repository}",
            f"--backend-directory={dist.backend_dir}",
            f"--backend-config=python,shm-region-prefix-name={self._shm_prefix}",
            f"--http-address={opts.host}",
            f"--http-port={opts.http_port}",
            f"--grpc-address={opts.host}",
            f"--grpc-port={opts.grpc_port}",
            f"--metrics-address={opts.host}",
            f"--metrics-port={opts.metrics_port}",
            "--allow-gpu-metrics=false",
            f"--model-control-mode={opts.model_control_mode}",
            f"--exit-timeout-secs={opts.exit_timeout_s}",
            f"--log-verbose={opts.log_verbose}",
        ]
        if opts.model_control_mode == "poll":
            cmd.append(f"--repository-poll-secs={opts.poll_interval_s}")
        cmd += [f"--load-model={name}" for name in opts.load_models]
        if opts.grpc_tls:
            cmd += opts.grpc_tls.arguments()
        if opts.admin_key:
            restriction = f"{','.join(opts.restricted_apis)}:{ADMIN_KEY_HEADER}={opts.admin_key}"
            cmd += [f"--http-restricted-api={restriction}", f"--grpc-restricted-protocol={restriction}"]
        if opts.sagemaker_port is not None:
            cmd += ["--allow-sagemaker=true", f"--sagemaker-port={opts.sagemaker_port}"]
        cmd += list(opts.extra_args)
        return cmd

    def environment(self) -> dict[str, str]:
        """Environment for tritonserver: its libraries, and this Python first on PATH.

        The backend stub embeds libpython and finds its ``site-packages`` through the ``python3``
        it meets first on PATH, so the virtualenv running tritonkit must come first.
        """
        dist = self._dist()
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(dist.libs), env.get("LD_LIBRARY_PATH")]))
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        # A __pycache__ written by the stub next to model.py looks like a repository change to a
        # polling server and reloads the model once; sources are byte-compiled at publish time.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if self.options.sagemaker_default_model:
            env["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] = self.options.sagemaker_default_model
        env.update(self.options.env)
        if self.options.repository_in_object_store and not env.get("AWS_DEFAULT_REGION"):
            # Triton's S3 client reads only AWS_DEFAULT_REGION; boto3 and the AWS CLI also AWS_REGION.
            region = env.get("AWS_REGION")
            if region:
                env["AWS_DEFAULT_REGION"] = region
        return env

    # -- life cycle ------------------------------------------------------------------------
    def start(self, timeout_s: float = 120.0) -> None:
        """Start tritonserver and return once it reports ready; raise :class:`ServerStartError`."""
        if self.is_running():
            raise ServerError("the server is already running")
        self._dist()  # first: a missing [serve] extra is the error to show, not a port or a path
        repo = self.options.repository
        if not self.options.repository_in_object_store and not Path(repo).is_dir():
            raise ServerStartError(
                f"model repository {repo} does not exist: build one with `tritonkit build-repo` "
                "or pass --repo"
            )
        opts = self.options
        ensure_ports_free(
            opts.host, {"http": opts.http_port, "grpc": opts.grpc_port, "metrics": opts.metrics_port}
        )
        if opts.sagemaker_port is not None:
            ensure_ports_free("0.0.0.0", {"sagemaker": opts.sagemaker_port})
        remove_stale_shared_memory()
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="tritonserver-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        # The reaper first: from the moment tritonserver exists, something outlives this process
        # to end it and remove its shared memory, however this process ends.
        self._reaper = Reaper(self._shm_prefix, grace_s=opts.exit_timeout_s + 5, log_path=self._log_path)
        self._reaper.start()
        log = open(self._log_path, "ab")
        try:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,  # one process group: server + stubs, killed together
                preexec_fn=_die_with_parent if opts.die_with_parent else None,
            )
        except BaseException:
            self._release_reaper()
            raise
        finally:
            log.close()
        try:
            self._reaper.watch(self._process.pid)
            self._wait_ready(timeout_s)
            remote = opts.repository_in_object_store
            # Poll mode heals by touching the model's files, which an object store cannot do.
            if opts.heal and (
                opts.model_control_mode == "explicit" or (opts.model_control_mode == "poll" and not remote)
            ):
                self._watchdog = StubWatchdog(
                    self._process.pid,
                    self.http_url,
                    None if remote else Path(opts.repository),
                    opts.model_control_mode,
                    headers={ADMIN_KEY_HEADER: opts.admin_key} if opts.admin_key else None,
                    on_event=self.on_heal,
                )
                self._watchdog.start()
        except BaseException:
            self.stop()
            raise

    @property
    def heal_events(self) -> list[HealEvent]:
        """What the stub watchdog has done since start (empty when healing is off)."""
        return list(self._watchdog.events) if self._watchdog else []

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = [f"{self.http_url}/v2/health/ready"]
        if self.sagemaker_url:  # Triton opens the SageMaker port after reporting ready on HTTP
            pending.append(f"{self.sagemaker_url}/ping")
        while True:
            assert self._process is not None
            code = self._process.poll()
            if code is not None:
                raise ServerStartError(f"tritonserver exited with code {code} while starting", self._tail())
            try:
                while pending:
                    with urllib.request.urlopen(pending[0], timeout=1.0) as response:
                        if response.status != 200:
                            break
                    pending.pop(0)
                if not pending:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() >= deadline:
                raise ServerStartError(f"tritonserver was not ready after {timeout_s:.0f} s", self._tail())
            time.sleep(0.1)

    def _tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait(self) -> int:
        """Block until tritonserver exits; return its exit code."""
        if self._process is None:
            raise ServerError("the server was never started")
        return self._process.wait()

    def stop(self, timeout_s: float | None = None) -> int | None:
        """Stop the server: SIGTERM, a bounded wait, then SIGKILL of the whole process group."""
        process = self._process
        if process is None:
            self._release_reaper()
            return None
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        grace = timeout_s if timeout_s is not None else self.options.exit_timeout_s + 5
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Stubs outlive a killed server and a hung stub outlives SIGTERM: end the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        code = process.wait()
        remove_regions(self._shm_prefix)
        self._process = None
        self._release_reaper()
        return code

    def _release_reaper(self) -> None:
        """Nothing is left to reap: let the reaper find that out and exit."""
        if self._reaper is not None:
            self._reaper.release()
            self._reaper = None

    def _dist(self) -> TritonDistribution:
        if self._distribution is None:
            self._distribution = locate_distribution()
        return self._distribution

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
