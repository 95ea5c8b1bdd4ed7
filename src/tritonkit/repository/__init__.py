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
from ._defaults import (
    CpuLayout,
    available_cores,
    default_cpu_layout,
    parallel_runs_for,
    preprocess_threads_for,
)
from ._errors import (
    BuildOptionsError,
    InvalidNameError,
    LabelsError,
    ObjectStoreError,
    ObjectStoreURLError,
    PublishError,
    RepositoryError,
    S3ExtraMissingError,
    VersionExistsError,
)
from ._labels import read_labels
from ._names import classifier_name, preprocess_name, validate_model_name
from ._object_store import (
    ObjectStoreBuild,
    ObjectStorePublication,
    ObjectStoreURL,
    build_to_object_store,
    is_object_store_url,
    next_object_store_version,
    object_store_client,
    object_store_models,
    object_store_versions,
    parse_object_store_url,
    pin_versions,
    publish_to_object_store,
)
from ._publish import CONFIG_FILENAME, existing_versions, next_version, repository_lock, write_atomic
from ._variants import publish_config_variant

__all__ = [
    "BUILD_STEPS",
    "CONFIG_FILENAME",
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
    "ObjectStoreBuild",
    "ObjectStoreError",
    "ObjectStorePublication",
    "ObjectStoreURL",
    "ObjectStoreURLError",
    "PublishError",
    "RepositoryError",
    "S3ExtraMissingError",
    "Scheduling",
    "VersionExistsError",
    "available_cores",
    "build_repository",
    "build_to_object_store",
    "check_images",
    "classifier_config",
    "classifier_name",
    "default_cpu_layout",
    "ensemble_config",
    "existing_versions",
    "is_object_store_url",
    "next_object_store_version",
    "next_version",
    "object_store_client",
    "object_store_models",
    "object_store_versions",
    "parallel_runs_for",
    "parse_config",
    "parse_object_store_url",
    "pin_versions",
    "preprocess_config",
    "preprocess_name",
    "preprocess_threads_for",
    "publish_config_variant",
    "publish_to_object_store",
    "read_labels",
    "render_config",
    "repository_lock",
    "triton_dtype",
    "validate_model_name",
    "write_atomic",
]
