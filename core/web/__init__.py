"""``quorum web``'s rules, free of any web framework and of the UI.

``access`` decides who may connect (token, cookie, Origin, Host); ``child`` is the app process's
side (it never outlives the server). The server itself, textual-serve's ``Server`` with that
guard, is ``tui.web.server``: it serves the Textual app, so it lives with it, and only the
``web`` command imports it (``quorum --help`` stays fast).
"""
