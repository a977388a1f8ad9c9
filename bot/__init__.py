"""itabot: a LINE Official Account for a Thai public office's integrity programme.

``bot`` is the outer room: the app factory, configuration, the webhook, the LINE gateway,
the workers, the simulator and the command line. See docs/architecture.md.
"""
