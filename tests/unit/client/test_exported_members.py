"""The public API is what ``__all__`` says: sorted, importable, and nothing private leaks."""

from __future__ import annotations

import inspect

import tritonkit.client as client


def test_all_is_sorted_and_unique() -> None:
    assert client.__all__ == sorted(set(client.__all__))


def test_every_exported_name_exists_and_comes_from_a_private_module() -> None:
    for name in client.__all__:
        member = getattr(client, name)
        module = getattr(member, "__module__", "") or ""
        if inspect.isclass(member) or inspect.isfunction(member):
            assert module.startswith("tritonkit.client._"), (name, module)


def test_every_public_name_of_the_package_is_exported() -> None:
    public = {
        name
        for name, member in vars(client).items()
        if not name.startswith("_") and not inspect.ismodule(member) and name != "annotations"
    }
    assert public == set(client.__all__)


def test_every_error_is_a_triton_client_error() -> None:
    errors = [getattr(client, n) for n in client.__all__ if inspect.isclass(getattr(client, n))]
    errors = [e for e in errors if issubclass(e, Exception)]
    assert len(errors) == 9
    assert all(issubclass(e, client.TritonClientError) for e in errors)
