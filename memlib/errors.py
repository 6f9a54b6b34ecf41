"""Exception types raised by memlib.

Library code raises these (never ``sys.exit``); the command line turns them into one line on
stderr and a non-zero exit code. Every message says *what* is wrong, *which* input (file, set,
parameter) and, where possible, *what to do*.
"""


class MemlibError(Exception):
    """Base class of every error memlib raises on purpose."""


class InputError(MemlibError, ValueError):
    """A user-supplied input (path, image set, array, feature set) is unusable."""


class ParameterError(MemlibError, ValueError):
    """A parameter or params file is unknown, mistyped or out of range."""


class EncoderError(MemlibError, ValueError):
    """An encoder name is unknown or its weights cannot be provided (e.g. offline)."""


class CacheError(MemlibError, OSError):
    """The cache directory is not usable (not writable, corrupt entry, checksum mismatch)."""


class ChecksumError(CacheError):
    """A file's sha256 does not match the value memlib expects."""
