"""The Jinja2 environment shared by the site and the app: templates shipped as package data under
``fourfold/web/templates`` (``site/``, ``app/``, and ``shared/`` for what both include), HTML autoescaped."""

from jinja2 import Environment, PackageLoader, select_autoescape


def environment() -> Environment:
    return Environment(
        loader=PackageLoader("fourfold.web", "templates"),
        autoescape=select_autoescape(["html"]),
        keep_trailing_newline=True,
    )
