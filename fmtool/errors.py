"""One exception type for mistakes a user can fix; the CLI prints it as one line, no traceback."""


class UserError(Exception):
    """A problem the user can act on; the message says what to do."""

    exit_code = 2
