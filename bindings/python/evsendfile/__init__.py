"""evsendfile: zero-copy file responses for asyncio, moved by the evsendfile
C library on its own loop thread (see README.md)."""

from ._dropin import SendfileCallable, SendfileRegion, can_use_sendfile, create_sendfile_callable
from ._errors import TruncatedFileError
from ._ffi import LibraryNotFoundError, lib as _lib
from ._send import send_file

__all__ = [
    "SendfileCallable",
    "SendfileRegion",
    "can_use_sendfile",
    "create_sendfile_callable",
    "send_file",
    "TruncatedFileError",
    "LibraryNotFoundError",
    "library_version",
]


def library_version() -> str:
    """Version string of the loaded libevsendfile ("2.1.0")."""
    from ._ffi import ffi

    return ffi.string(_lib.sf_version_text()).decode("ascii")
