"""User-facing errors: the CLI prints them as one line and exits non-zero, never a traceback."""


class GankdError(Exception):
    """A problem with the user's input or environment, described in one line."""

    exit_code = 2


class DataError(GankdError):
    """Unusable data: a missing folder, an undecodable image, a bad data-set spec."""


class CheckpointError(GankdError):
    """A checkpoint that is missing, truncated, of a foreign format or inconsistent."""


class OutputExistsError(GankdError):
    """Refusal to overwrite something that already exists."""


class TrainingError(GankdError):
    """A run that cannot go on: a non-finite loss, a state that does not fit the run."""


class Interrupted(GankdError):
    """Ctrl-C during a long job; the message says how to go on from where it stopped."""

    exit_code = 130
