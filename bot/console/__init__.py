"""The staff console (``/console``): sign-in, roles, office isolation and the audit trail."""

from bot.console import complaints as _complaints  # noqa: F401  (its routes join the console blueprint)
from bot.console import festivals as _festivals  # noqa: F401  (its routes join the console blueprint)
from bot.console import integrity as _integrity  # noqa: F401  (its routes join the console blueprint)
from bot.console import surveys as _surveys  # noqa: F401  (its routes join the console blueprint)
from bot.console.views import bp

__all__ = ["bp"]
