"""The one exception type for mistakes a user can fix; the CLI prints it as one line."""


class UserError(Exception):
    """Bad input or configuration: the message names the thing and what to do."""
