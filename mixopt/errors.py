"""Errors that the CLI turns into one clear line and an exit code (2: bad input, 1: a run failed)."""

import errno
import os
import reprlib


class MixoptError(Exception):
    """Base of every error meant for the user: the message names the problem and the fix."""

    exit_code = 2


class ConfigError(MixoptError):
    """A study config, table or command-line value is invalid."""


class InfeasibleSpaceError(ConfigError):
    """The constraints admit no mixture."""


class StorageError(MixoptError):
    """The study storage cannot be opened, or the study does not exist."""


class StorageLost(StorageError):
    """The database server stayed out of reach past the retry limit while the study was running."""

    exit_code = 1


class RunFailed(MixoptError):
    """A runner could not evaluate a mixture; the reason is stored with the failed trial."""

    exit_code = 1


class LateResult(MixoptError):
    """A result told for a trial that another controller already finished or failed and re-queued (this one
    was paused or cut off past the stale limit); the result is kept on the study as an extra attempt."""

    exit_code = 1


class OutputError(MixoptError):
    """A file or folder that mixopt must write is read-only, full, or missing; the study is untouched."""

    @classmethod
    def cannot_write(cls, path: object, error: OSError, elsewhere: str) -> "OutputError":
        """The one-line error for ``error`` raised writing ``path`` (a file, or a folder to write into);
        ``elsewhere`` says how to write somewhere else instead."""
        folder = str(path) if os.path.isdir(str(path)) else os.path.dirname(os.path.abspath(str(path)))
        fixes = {
            errno.ENOSPC: f"free space on the filesystem of {folder}",
            errno.EDQUOT: f"free space under your disk quota on the filesystem of {folder}",
            errno.EROFS: f"{folder} is on a read-only filesystem: remount it read-write",
            errno.EACCES: f"make {folder} writable (chmod u+w)",
            errno.EPERM: f"make {folder} writable (chmod u+w)",
        }
        fix = fixes.get(error.errno or 0, f"check {folder}")  # errno is None for an OSError built by hand
        return cls(f"cannot write {path}: {error.strerror or error}; {fix}, or {elsewhere}")


def check_path_name(name: str, what: str = "study name") -> str:
    """``name`` (a ``what``: study, source, objective, fidelity...), which may become part of a file or folder
    name (runs/<study>/, exports/<study>.yaml, the token cache's <source>-<key>/), when it is one plain path
    component: not empty, '.' or '..', no '/', '\\' or NUL, no surrounding spaces; else a ``ConfigError``."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or name != name.strip():
        raise ConfigError(f"{what} {name!r} must be one plain file name (no '/' or '\\', not '.' or '..', no NUL, no "
                          "surrounding spaces): it becomes part of file and folder names; choose another name")
    return name


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 4, 4, 40, 40


def shown(value: object) -> str:
    """``repr(value)`` cut short (about 40 characters a level, 3 levels), however large or deeply shared
    ``value`` is (a YAML alias bomb is 9**9 items once expanded): how error messages quote bad values."""
    return _REPR.repr(value)
