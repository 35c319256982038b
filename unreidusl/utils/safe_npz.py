"""Reading ``.npz`` files that may come from someone else, without ever unpickling them.

``np.load(..., allow_pickle=False)`` refuses object arrays only when one is accessed, with numpy's
message that does not name the file. :func:`read_npz` reads every array at once and turns each
failure into an error that names the file and the fix.
"""
import zipfile
from typing import Dict

import numpy as np

__all__ = ["UnsafeFileError", "read_npz"]


class UnsafeFileError(PermissionError):
    """A file would need unpickling (which can execute code) and the user has not opted in."""


def read_npz(path: str, what: str = "array file", fix: str = "re-create it with the tool that wrote it"
             ) -> Dict[str, np.ndarray]:
    """All arrays of ``path`` as a dict; :class:`UnsafeFileError` if one holds pickled objects,
    ``ValueError`` if the file is not a readable ``.npz``; both name ``path`` and say ``fix``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {key: z[key] for key in z.files}
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise UnsafeFileError(
                f"{path}: this {what} holds pickled Python objects, which can execute code when "
                f"loaded, so it was refused (allow_pickle=False): {fix}") from None
        raise ValueError(f"{path}: not a readable {what} ({e}): {fix}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable {what} ({type(e).__name__}: {e}); the file is "
                         f"truncated or corrupt: {fix}") from None
