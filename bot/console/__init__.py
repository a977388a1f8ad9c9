"""The staff console (``/console``): sign-in, roles, office isolation and the audit trail."""

from bot.console.views import bp

__all__ = ["bp"]
