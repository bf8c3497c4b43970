"""User-facing errors: the CLI prints them as one line and exits non-zero, never a traceback.
Warnings and notes are one line on stderr too."""

import sys


class GankdError(Exception):
    """A problem with the user's input or environment, described in one line."""

    exit_code = 2


class ConfigError(GankdError):
    """A setting (config file, key=value, option) that cannot be used."""


class DataError(GankdError):
    """Unusable data: a missing folder, an undecodable image, a bad data-set spec."""


class CheckpointError(GankdError):
    """A checkpoint that is missing, truncated, of a foreign format or inconsistent."""


class OutputExistsError(GankdError):
    """Refusal to overwrite something that already exists."""


class OutputError(GankdError):
    """An output that cannot be written: a read-only file system, no permission, a full disk."""


class TrainingError(GankdError):
    """A run that cannot go on: a non-finite loss, a state that does not fit the run."""


class Interrupted(GankdError):
    """Ctrl-C during a long job; the message says how to go on from where it stopped."""

    exit_code = 130


def did_you_mean(name: str, known) -> str:
    """` (did you mean 'batch'?)` when a known name is close to a misspelt one, else nothing."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(kind: str, name: str, known) -> str:
    """`unknown method 'd3tt' (did you mean 'd3t'?); known methods: cdc, d3t, ...` for a registry miss."""
    known = sorted(known)
    return f"unknown {kind} {name!r}{did_you_mean(name, known)}; known {kind}s: {', '.join(known)}"


def warn(text: str) -> None:
    """Something the user should know that does not stop the work (e.g. a resume that is not exact)."""
    print(f"gankd: warning: {text}", file=sys.stderr, flush=True)


def note(text: str) -> None:
    """What gankd did on the user's behalf (e.g. removed leftovers of a killed run)."""
    print(f"gankd: {text}", file=sys.stderr, flush=True)
