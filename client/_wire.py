"""What differs between the two protocols, with no I/O: keyword arguments, tensors, answers.

tritonclient's HTTP and gRPC clients (and their asyncio twins) share method names; this module
knows the few places where their arguments and results differ, so the clients do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._endpoint import Protocol
from ._tensors import OutputRequest, TensorData


@dataclass(frozen=True)
class ShmSlot:
    """Where one tensor lives in a registered system shared-memory region."""

    region: str
    byte_size: int
    offset: int = 0


class Wire:
    """Protocol-specific details for the calls the SDK makes."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        if protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module
        self._module: Any = module

    def call_kwargs(self, headers: Mapping[str, str], remaining_s: float) -> dict[str, Any]:
        """Keyword arguments every tritonclient call gets: headers, and gRPC's own deadline."""
        kwargs: dict[str, Any] = {"headers": dict(headers) if headers else None}
        if self.protocol == "grpc":
            # gRPC carries the deadline to the server, which then stops working on the call
            kwargs["client_timeout"] = max(remaining_s, 0.001)
        return kwargs

    def infer_inputs(
        self, tensors: tuple[TensorData, ...], slots: Mapping[str, ShmSlot] | None = None
    ) -> list[Any]:
        result = []
        for tensor in tensors:
            item = self._module.InferInput(tensor.name, list(tensor.array.shape), tensor.datatype)
            slot = (slots or {}).get(tensor.name)
            if slot is not None:
                item.set_shared_memory(slot.region, slot.byte_size, slot.offset)
            elif self.protocol == "http":
                item.set_data_from_numpy(tensor.array, binary_data=True)
            else:
                item.set_data_from_numpy(tensor.array)
            result.append(item)
        return result

    def infer_outputs(
        self, requests: tuple[OutputRequest, ...], slots: Mapping[str, ShmSlot] | None = None
    ) -> list[Any]:
        result = []
        for request in requests:
            if self.protocol == "http":
                item = self._module.InferRequestedOutput(
                    request.name, binary_data=True, class_count=request.class_count
                )
            else:
                item = self._module.InferRequestedOutput(request.name, class_count=request.class_count)
            slot = (slots or {}).get(request.name)
            if slot is not None:
                item.set_shared_memory(slot.region, slot.byte_size, slot.offset)
            result.append(item)
        return result

    def output_header(self, result: Any, name: str) -> tuple[str, tuple[int, ...]] | None:
        """Datatype and shape of one output of an answer, ``None`` if the answer lacks it."""
        output = result.get_output(name)
        if output is None:
            return None
        if isinstance(output, dict):
            return output["datatype"], tuple(int(d) for d in output["shape"])
        return output.datatype, tuple(int(d) for d in output.shape)

    @staticmethod
    def read_outputs(
        result: Any, requests: tuple[OutputRequest, ...], skip: set[str]
    ) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for request in requests:
            if request.name in skip:
                continue
            array = result.as_numpy(request.name)
            if array is not None:
                arrays[request.name] = array
        return arrays
