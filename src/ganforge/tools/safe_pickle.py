"""Reading NVlabs network pickles (stylegan2-ada-pytorch, stylegan3) without running anything from them.

Those pickles are written with `torch_utils.persistence`: each network module is stored as a call to
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta` holds the module's *source
code* (`module_src`, which the real function exec()s), its class name and its `__dict__` (`_parameters`,
`_buffers`, `_modules`, the init arguments and plain attributes). Loading one with `pickle.load` runs
whatever that source says.

`RestrictedUnpickler` resolves every global the stream names through a short allow-list and refuses
anything else before it can be called:

- `torch_utils.persistence._reconstruct_persistent_obj` -> `PersistentStub`: an inert record of the
  class name and state; `meta['module_src']` is only hashed (for provenance), never compiled or run;
- `dnnlib.util.EasyDict` -> `AttrDict`, a plain dict subclass;
- tensors: `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter[_with_state]` (re-implemented here
  so that no hooks or metadata from the file are attached), and the storages they wrap, which plain
  pickle writes as `torch.storage._load_from_bytes(legacy torch.save bytes)`: those bytes are read
  with `torch.load(weights_only=True)`, PyTorch's own restricted loader;
- containers and scalars: `collections.OrderedDict`, `builtins.set` / `frozenset`, numpy scalars,
  dtypes and arrays of numeric dtypes, `_codecs.encode` (how protocol-2 pickles spell bytes).
"""
from __future__ import annotations

import _compat_pickle
import codecs
import collections
import hashlib
import io
import pickle
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from ..errors import GanforgeError

__all__ = ["AttrDict", "PersistentStub", "RestrictedUnpickler", "UnsafePickle", "restricted_load"]


class UnsafePickle(GanforgeError):
    """A pickle names a global outside the allow-list (it might run code); nothing from it was executed."""


class AttrDict(dict):
    """Stand-in for dnnlib.util.EasyDict: a plain dict (attribute access is not needed here)."""


class PersistentStub:
    """Stand-in for a `torch_utils.persistence` object: its class name and pickled state, nothing else."""

    def __init__(self, class_name: str, state: dict[str, Any], version: Any, src_sha256: str):
        self.class_name, self.state, self.version, self.src_sha256 = class_name, state, version, src_sha256

    def child(self, name: str) -> "PersistentStub | None":
        """The submodule `name` (None when absent)."""
        c = (self.state.get("_modules") or {}).get(name)
        return c if isinstance(c, PersistentStub) else None

    def attr(self, name: str, default: Any = None) -> Any:
        """A plain attribute of the pickled object (e.g. conv_clamp), `default` when absent."""
        return self.state.get(name, default)

    def __setstate__(self, state: Any) -> None:
        """A BUILD after the record would overwrite it: not something the persistence format does."""
        raise UnsafePickle("a torch_utils.persistence record is followed by extra state")

    def __repr__(self) -> str:
        return f"PersistentStub({self.class_name})"


def _reconstruct_persistent_obj(meta: Any) -> PersistentStub:
    # Replaces torch_utils.persistence._reconstruct_persistent_obj, which exec()s meta['module_src'].
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickle("a torch_utils.persistence record is not of type 'class'")
    name, state, src = meta.get("class_name"), meta.get("state"), meta.get("module_src")
    if not isinstance(name, str) or not isinstance(state, dict):
        raise UnsafePickle("a torch_utils.persistence record has no class name or state")
    digest = hashlib.sha256(src.encode("utf-8", "replace")).hexdigest() if isinstance(src, str) else ""
    return PersistentStub(name, dict(state), meta.get("version"), digest)


def _int_tuple(x: Any, what: str) -> tuple[int, ...]:
    if not isinstance(x, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in x):
        raise UnsafePickle(f"tensor {what} is not a tuple of integers")
    return tuple(x)


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    # Like torch._utils._rebuild_tensor_v2, minus the file's hooks and metadata.
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickle("a tensor is built on something that is not a storage")
    if not isinstance(offset, int):
        raise UnsafePickle("tensor offset is not an integer")
    return torch._utils._rebuild_tensor(storage, offset, _int_tuple(size, "size"), _int_tuple(stride, "stride"))


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None,
                       state: Any = None) -> torch.Tensor:
    # A parameter's data is all we keep (no hooks, no Python attributes from the file).
    if not isinstance(data, torch.Tensor):
        raise UnsafePickle("a parameter holds something that is not a tensor")
    return data


def _load_storage(data: Any) -> Any:
    # torch.storage._load_from_bytes calls torch.load(weights_only=False) on these bytes; we do not.
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickle("a storage record holds no bytes")
    with warnings.catch_warnings():  # TypedStorage deprecation chatter
        warnings.simplefilter("ignore")
        try:
            return torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as e:
            raise UnsafePickle(f"a tensor storage is not plain tensor data ({str(e).splitlines()[0][:120]})") from None


def _numeric_dtype(dtype: Any) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc":
        raise UnsafePickle(f"numpy dtype {dtype!r} is not numeric")
    return dtype


def _np_scalar(dtype: Any, data: Any = None) -> Any:
    dtype = _numeric_dtype(dtype)
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise UnsafePickle("a numpy scalar has no data of its size")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


def _np_dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    if not isinstance(spec, str):
        raise UnsafePickle("a numpy dtype is not named by a string")
    try:
        return _numeric_dtype(np.dtype(spec))
    except TypeError:
        raise UnsafePickle(f"unknown numpy dtype {spec!r}") from None


def _np_reconstruct(subtype: Any, shape: Any = (0,), dtype: Any = b"b") -> np.ndarray:
    # An empty array; BUILD then fills it through ndarray.__setstate__ (numeric dtypes only, see _np_dtype).
    if subtype is not np.ndarray:
        raise UnsafePickle("only plain numpy arrays may be rebuilt")
    return np.ndarray.__new__(np.ndarray, _int_tuple(shape, "shape"), np.uint8)


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    if not isinstance(text, str) or codecs.lookup(encoding).name not in ("latin-1", "iso8859-1"):
        raise UnsafePickle("_codecs.encode is only allowed for latin-1 text (bytes in protocol 2)")
    return text.encode("latin-1")


def _allowed() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib.util", "EasyDict"): AttrDict,
        ("dnnlib", "EasyDict"): AttrDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("_codecs", "encode"): _codecs_encode,
        ("numpy", "dtype"): _np_dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1 and 2 spell it differently
        table[(core, "scalar")] = _np_scalar
        table[(core, "_reconstruct")] = _np_reconstruct
    return table


ALLOWED: dict[tuple[str, str], Any] = _allowed()


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves globals only from ALLOWED (refusing all others) and no persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        """The allow-listed stand-in for module.name; anything else raises UnsafePickle before it is used."""
        # Python 2 names (protocol < 3 pickles say __builtin__, copy_reg), normalised as pickle itself does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickle(f"it references {module}.{name}, which is not network data") from None

    def persistent_load(self, pid: Any) -> Any:
        """Persistent ids belong to torch.save files, which are read elsewhere: refuse."""
        raise UnsafePickle("it uses persistent ids (a torch.save file, not a network pickle)")


def restricted_load(f: BinaryIO | str | Path) -> Any:
    """The object in a pickle stream, built only from allow-listed globals; UnsafePickle otherwise."""
    if isinstance(f, (str, Path)):
        with open(f, "rb") as fh:
            return RestrictedUnpickler(fh).load()
    return RestrictedUnpickler(f).load()
