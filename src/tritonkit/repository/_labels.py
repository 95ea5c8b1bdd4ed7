"""Class labels: one per line, in the order of the model's scores."""

from __future__ import annotations

from pathlib import Path

from ._errors import LabelsError


def read_labels(path: Path) -> list[str]:
    """Read a labels file; refuse what Triton's classification extension would mangle."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise LabelsError(
            f"labels file {path} does not exist: pass --labels with one label per line"
        ) from exc
    except UnicodeDecodeError as exc:
        raise LabelsError(
            f"labels file {path} is not UTF-8 text: save it as UTF-8, one label per line"
        ) from exc
    except OSError as exc:
        raise LabelsError(f"labels file {path} cannot be read: {exc.strerror}") from exc
    labels = [line.strip() for line in text.splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        raise LabelsError(f"labels file {path} is empty: write one label per line, in score order")
    blank = [i + 1 for i, label in enumerate(labels) if not label]
    if blank:
        raise LabelsError(f"labels file {path} has blank lines at {blank}: every class needs a label")
    return labels


def check_label_count(labels: list[str], num_classes: int, path: Path) -> None:
    if len(labels) != num_classes:
        raise LabelsError(
            f"labels file {path} has {len(labels)} labels but the model scores {num_classes} classes: "
            "give one label per class, in the order of the model's outputs"
        )


def labels_bytes(labels: list[str]) -> bytes:
    return ("\n".join(labels) + "\n").encode("utf-8")
