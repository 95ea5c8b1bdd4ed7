from __future__ import annotations

import pytest

from tritonkit.repository import InvalidNameError, validate_model_name


@pytest.mark.parametrize("name", ["flowers", "resnet50-v2", "a.b_c", "9lives"])
def test_triton_legal_names_are_accepted(name: str) -> None:
    assert validate_model_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("a/b", "path separator"),
        ("..", "path separator"),
        ("a..b", "'..'"),
        ("..\\evil", "path separator"),
        (".hidden", "start with"),
        ("with space", "letters, digits"),
        ("semi;colon", "letters, digits"),
        ("x" * 200, "longer than"),
    ],
)
def test_unsafe_names_are_refused_with_the_reason(name: str, why: str) -> None:
    with pytest.raises(InvalidNameError, match=why):
        validate_model_name(name)
