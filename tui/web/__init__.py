"""The Textual app served to a browser: textual-serve's ``Server`` with ``core.web.access`` as
its guard, an index page that loads nothing from the internet, a cap on app processes and a
shutdown that ends every one of them (``server``)."""
