"""Library statuses -> Python exceptions."""

from __future__ import annotations

import errno

from ._ffi import SF_EBLOCKING, SF_ENOKTLS, SF_ETIMEDOUT, SF_ETRUNCATED, ffi, lib


class TruncatedFileError(OSError):
    """The file ended before the region did (it shrank while being sent).

    The bytes a response header promised are missing: the connection must be
    closed (the binding has already aborted the transport when it raises this).
    """


# Library codes that are not errno values, with the errno that means the same.
_LIBRARY_ERRNO = {
    SF_ETIMEDOUT: errno.ETIMEDOUT,
    SF_EBLOCKING: errno.EINVAL,
    SF_ENOKTLS: errno.EOPNOTSUPP,
}


def strerror(status: int) -> str:
    return ffi.string(lib.sf_err_text(status)).decode("utf-8", "replace")


def error_name(status: int) -> str:
    return ffi.string(lib.sf_err_name(status)).decode("ascii", "replace")


def exception_for(status: int, body_sent: int = 0) -> OSError:
    """The exception for a negative library status.

    -errno values become the matching OSError subclass (OSError picks it from
    errno: BrokenPipeError, ConnectionResetError, FileNotFoundError, ...),
    SF_ETIMEDOUT becomes TimeoutError, SF_ETRUNCATED TruncatedFileError.
    Every exception carries ``sf_status`` (the raw code) and ``body_sent``.
    """
    text = strerror(status)
    exc: OSError
    if status == SF_ETRUNCATED:
        exc = TruncatedFileError(errno.EIO, text)
    elif status == SF_ETIMEDOUT:
        exc = TimeoutError(errno.ETIMEDOUT, text)
    else:
        exc = OSError(_LIBRARY_ERRNO.get(status, -status), text)
    exc.sf_status = status  # type: ignore[attr-defined]
    exc.body_sent = body_sent  # type: ignore[attr-defined]
    return exc
