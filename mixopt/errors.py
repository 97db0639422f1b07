"""Errors that the CLI turns into one clear line and an exit code (2: bad input, 1: a run failed)."""


class MixoptError(Exception):
    """Base of every error meant for the user: the message names the problem and the fix."""

    exit_code = 2


class ConfigError(MixoptError):
    """A study config, table or command-line value is invalid."""


class InfeasibleSpaceError(ConfigError):
    """The constraints admit no mixture."""


class StorageError(MixoptError):
    """The study storage cannot be opened, or the study does not exist."""


class RunFailed(MixoptError):
    """A runner could not evaluate a mixture; the reason is stored with the failed trial."""

    exit_code = 1
