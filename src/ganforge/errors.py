"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class GanforgeError(Exception):
    """A problem with the user's input (path, name, key, file); shown as one line, exit code 2."""


class TrainingDiverged(GanforgeError):
    """Training produced non-finite losses too many times in a row and stopped."""
