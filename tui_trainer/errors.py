"""The exceptions every layer shares: bad input (one line, exit 2) and a stop on request."""


class UserError(Exception):
    """Bad input from the user: front ends print the message on one line and exit 2."""


class ConfigError(UserError):
    """A config key, value, preset or sweep file that is wrong."""


class Stopped(Exception):
    """The run's stop event was set (raised inside the core; front ends see `interrupted`)."""
