"""Reading ``.npz`` files that may come from someone else, without ever unpickling them, and
checking their arrays before they reach compiled code.

``np.load(..., allow_pickle=False)`` refuses object arrays only when one is accessed, with numpy's
message that does not name the file. :func:`read_npz` reads every array at once and turns each
failure into an error that names the file and the fix.  The ``require_*`` / :func:`checked_csr`
helpers validate what was read (keys, dtypes, shapes, ranges, finiteness): an index array from a
file is untrusted input, and an out-of-range index handed to a compiled kernel or to scipy's
sparse routines writes outside its buffer.
"""
import zipfile
from typing import Dict, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

__all__ = ["UnsafeFileError", "InvalidFileError", "read_npz", "require", "require_int_array",
           "require_scalar", "checked_csr"]


class UnsafeFileError(PermissionError):
    """A file would need unpickling (which can execute code) and the user has not opted in."""


class InvalidFileError(ValueError):
    """A file is readable but its content is malformed (missing keys, wrong dtype or shape,
    out-of-range indices, non-finite values); the message names the file and the fix."""


def read_npz(path: str, what: str = "array file", fix: str = "re-create it with the tool that wrote it"
             ) -> Dict[str, np.ndarray]:
    """All arrays of ``path`` as a dict; :class:`UnsafeFileError` if one holds pickled objects,
    :class:`InvalidFileError` if the file is not a readable ``.npz``; both name ``path`` and say
    ``fix``."""
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise InvalidFileError(f"{path}: a single .npy array, not a {what} (.npz): {fix}")
        with z:
            return {key: z[key] for key in z.files}
    except InvalidFileError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise UnsafeFileError(
                f"{path}: this {what} holds pickled Python objects, which can execute code when "
                f"loaded, so it was refused (allow_pickle=False): {fix}") from None
        raise InvalidFileError(f"{path}: not a readable {what} ({e}): {fix}") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, RuntimeError, MemoryError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise InvalidFileError(f"{path}: not a readable {what} ({type(e).__name__}: {e}); the file "
                               f"is truncated or corrupt: {fix}") from None


def require(z: Dict[str, np.ndarray], path: str, keys: Sequence[str], fix: str) -> None:
    """:class:`InvalidFileError` naming the first of ``keys`` missing from ``z``."""
    for key in keys:
        if key not in z:
            raise InvalidFileError(f"{path}: the array {key!r} is missing: {fix}")


def require_int_array(z, path: str, key: str, fix: str, ndim: int = 1) -> np.ndarray:
    """``z[key]`` as int64, which must be an integer (not bool) array of ``ndim`` dimensions."""
    a = z[key]
    if a.dtype.kind not in "iu" or a.ndim != ndim:
        raise InvalidFileError(f"{path}: {key!r} must be a {ndim}-D integer array, found dtype "
                               f"{a.dtype} with shape {a.shape}: {fix}")
    if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
        raise InvalidFileError(f"{path}: {key!r} holds values beyond int64: {fix}")
    return a.astype(np.int64, copy=False)


def require_scalar(z, path: str, key: str, fix: str, positive: bool = True) -> float:
    """``z[key]`` as a finite float (``> 0`` when ``positive``)."""
    a = z[key]
    if a.shape != () or a.dtype.kind not in "iuf":
        raise InvalidFileError(f"{path}: {key!r} must be a number, found dtype {a.dtype} with "
                               f"shape {a.shape}: {fix}")
    v = float(a)
    if not np.isfinite(v) or (positive and not v > 0):
        raise InvalidFileError(f"{path}: {key!r} = {v} must be finite{' and > 0' if positive else ''}: "
                               f"{fix}")
    return v


def checked_csr(path: str, what: str, indptr: np.ndarray, indices: np.ndarray,
                shape: Tuple[int, int], fix: str) -> sp.csr_matrix:
    """A canonical boolean CSR ``shape`` matrix from untrusted ``indptr`` / ``indices`` (int64,
    as :func:`require_int_array` returns them), after checking everything scipy does not:
    ``len(indptr) == rows + 1``, ``indptr[0] == 0``, non-decreasing, ``indptr[-1] == len(indices)``
    and ``0 <= indices < cols``.  Raises :class:`InvalidFileError` naming ``path`` and ``what``."""
    rows, cols = (int(s) for s in shape)

    def bad(reason):
        return InvalidFileError(f"{path}: {what}: {reason}: {fix}")

    if indptr.shape != (rows + 1,):
        raise bad(f"indptr has {indptr.shape[0]} entries, expected rows + 1 = {rows + 1}")
    if indptr[0] != 0 or indptr[-1] != indices.shape[0]:
        raise bad(f"indptr runs from {int(indptr[0])} to {int(indptr[-1])}, expected 0 to "
                  f"{indices.shape[0]} (the number of indices)")
    if rows and (np.diff(indptr) < 0).any():
        raise bad("indptr decreases")
    if indices.size and (indices.min() < 0 or indices.max() >= cols):
        raise bad(f"indices span {int(indices.min())}..{int(indices.max())}, outside 0..{cols - 1}")
    m = sp.csr_matrix((np.ones(indices.shape[0], bool), indices.astype(np.int32, copy=False),
                       indptr), shape=(rows, cols))
    m.sum_duplicates()
    return m
