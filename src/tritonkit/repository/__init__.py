"""Build and change Triton model repositories: configs from Triton's schema, atomic versions.

>>> result = build_repository("model.keras", BuildOptions(name="flowers", labels=Path("labels.txt")))
>>> result.version
1
"""

from ._build import (
    BUILD_STEPS,
    MANIFEST_FILENAME,
    SCALING_CHOICES,
    TARGETS,
    BuildOptions,
    BuildResult,
    build_repository,
    check_images,
)
from ._configs import (
    ENSEMBLE_INPUT,
    ENSEMBLE_OUTPUT,
    LABELS_FILENAME,
    ModelConfig,
    Scheduling,
    classifier_config,
    ensemble_config,
    parse_config,
    preprocess_config,
    render_config,
    triton_dtype,
)
from ._defaults import CpuLayout, available_cores, default_cpu_layout
from ._errors import BuildOptionsError, InvalidNameError, LabelsError, PublishError, RepositoryError
from ._labels import read_labels
from ._names import classifier_name, preprocess_name, validate_model_name
from ._publish import existing_versions, next_version

__all__ = [
    "BUILD_STEPS",
    "ENSEMBLE_INPUT",
    "ENSEMBLE_OUTPUT",
    "LABELS_FILENAME",
    "MANIFEST_FILENAME",
    "SCALING_CHOICES",
    "TARGETS",
    "BuildOptions",
    "BuildOptionsError",
    "BuildResult",
    "CpuLayout",
    "InvalidNameError",
    "LabelsError",
    "ModelConfig",
    "PublishError",
    "RepositoryError",
    "Scheduling",
    "available_cores",
    "build_repository",
    "check_images",
    "classifier_config",
    "classifier_name",
    "default_cpu_layout",
    "ensemble_config",
    "existing_versions",
    "next_version",
    "parse_config",
    "preprocess_config",
    "preprocess_name",
    "read_labels",
    "render_config",
    "triton_dtype",
    "validate_model_name",
]
