"""System shared memory for large tensors: regions made once, reused, and always removed.

The bookkeeping lives here without any I/O; the clients do the register/unregister calls the
plan asks for, so the sync and async clients share the same rules.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._errors import TritonClientError
from ._status import ModelMetadata
from ._tensors import OutputRequest, TensorData, numpy_dtype
from ._wire import ShmSlot


@dataclass
class Region:
    """One system shared-memory region: its server-side name, its ``/dev/shm`` key and size."""

    name: str
    key: str
    byte_size: int
    handle: Any = field(repr=False)
    registered: bool = False


@dataclass(frozen=True)
class RegionChange:
    """What a client must tell the server before using a pool's regions for one request."""

    register: tuple[Region, ...]
    retire: tuple[Region, ...]


class SharedMemoryPool:
    """The regions one client uses for shared-memory inference, keyed by tensor role.

    A region is reused while it is large enough, and replaced by a larger one when not. Requests
    that use a pool run one at a time (the pool's lock), since they share its regions.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or f"tritonkit_{os.getpid()}_{uuid.uuid4().hex[:8]}_"
        self.lock = threading.Lock()
        self._regions: dict[str, Region] = {}
        self._counter = 0
        self.closed = False

    @property
    def regions(self) -> tuple[Region, ...]:
        return tuple(self._regions.values())

    def _create(self, byte_size: int) -> Region:
        from tritonclient.utils import shared_memory as shm

        self._counter += 1
        name = f"{self.prefix}{self._counter}"
        key = f"/{name}"
        try:
            handle = shm.create_shared_memory_region(name, key, byte_size, create_only=True)
        except shm.SharedMemoryException as exc:
            raise TritonClientError(
                f"cannot create shared memory region {key}: {exc.__cause__ or exc}"
            ) from exc
        return Region(name=name, key=key, byte_size=byte_size, handle=handle)

    def prepare(
        self,
        tensors: tuple[TensorData, ...],
        outputs: tuple[OutputRequest, ...],
        metadata: ModelMetadata,
        batch_size: int | None,
    ) -> tuple[dict[str, ShmSlot], dict[str, ShmSlot], RegionChange]:
        """Copy numeric inputs into regions and reserve regions for outputs of known size.

        BYTES tensors, classification outputs and outputs whose size depends on the data are
        sent the ordinary way.
        """
        if self.closed:
            raise TritonClientError("this shared memory pool is closed")
        from tritonclient.utils import shared_memory as shm

        registers: list[Region] = []
        retired: list[Region] = []

        def slot(role: str, nbytes: int) -> Region:
            region = self._regions.get(role)
            if region is None or region.byte_size < nbytes:
                if region is not None:
                    retired.append(region)
                region = self._create(max(nbytes, 1))
                self._regions[role] = region
                registers.append(region)
            return region

        in_slots: dict[str, ShmSlot] = {}
        for tensor in tensors:
            if tensor.datatype == "BYTES" or tensor.nbytes == 0:
                continue
            region = slot(f"in:{tensor.name}", tensor.nbytes)
            shm.set_shared_memory_region(region.handle, [np.ascontiguousarray(tensor.array)])
            in_slots[tensor.name] = ShmSlot(region.name, tensor.nbytes)
        out_slots: dict[str, ShmSlot] = {}
        for request in outputs:
            nbytes = _output_nbytes(metadata, request, batch_size)
            if nbytes:
                region = slot(f"out:{request.name}", nbytes)
                out_slots[request.name] = ShmSlot(region.name, nbytes)
        return in_slots, out_slots, RegionChange(tuple(registers), tuple(retired))

    def read(self, region_name: str, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
        """A copy of one output the server wrote into a region."""
        from tritonclient.utils import shared_memory as shm

        region = next(r for r in self._regions.values() if r.name == region_name)
        dtype = numpy_dtype(datatype)
        if dtype is None:
            raise TritonClientError(f"cannot read a {datatype} output from shared memory")
        return np.array(shm.get_contents_as_numpy(region.handle, dtype, list(shape)), copy=True)

    def take_all(self) -> tuple[Region, ...]:
        """Hand every region over for removal and mark the pool closed."""
        self.closed = True
        regions = tuple(self._regions.values())
        self._regions.clear()
        return regions


def destroy(regions: Iterable[Region]) -> None:
    """Unmap and unlink regions locally; the server must have been told to unregister them."""
    from tritonclient.utils import shared_memory as shm

    for region in regions:
        with contextlib.suppress(Exception):
            shm.destroy_shared_memory_region(region.handle)


def _output_nbytes(metadata: ModelMetadata, request: OutputRequest, batch_size: int | None) -> int:
    if request.class_count:
        return 0
    spec = metadata.output(request.name)
    dtype = numpy_dtype(spec.datatype)
    if dtype is None or spec.datatype == "BF16":
        return 0
    dims = list(spec.shape)
    if batch_size is not None and dims and dims[0] == -1:
        dims[0] = batch_size
    if any(d < 0 for d in dims):
        return 0
    return int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
