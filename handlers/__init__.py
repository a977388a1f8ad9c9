"""Conversations and event handlers: one module per feature, each a small declared state machine.

``Dispatcher`` routes a stored event to its handler; ``Context`` is what a handler sees.
"""

from handlers.context import Context
from handlers.dispatcher import Dispatcher, build_engine

__all__ = ["Context", "Dispatcher", "build_engine"]
