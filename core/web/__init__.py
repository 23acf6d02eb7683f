"""``quorum web``: the app in a browser, served by textual-serve (one app process per tab).

``access`` decides who may connect (token, cookie, Origin, Host), with no web framework;
``server`` is textual-serve's ``Server`` with that guard, an index page that loads nothing
from the internet, a cap on app processes and a shutdown that ends every one of them; ``child``
is the app process's side. aiohttp and textual-serve are imported only by ``server``, which only
the ``web`` command imports (``quorum --help`` stays fast).
"""
