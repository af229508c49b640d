"""fourfold.web: the local web app (``fourfold-serve``) and the static results site (``make report``).

The top floor: the one subpackage that imports all four papers, only through their public entry points
(the allowed modules are listed in ``tests/web/test_boundaries.py``); no paper imports it.

    python -m fourfold.web.site          # experiments/site/: index + one page per paper, opens offline
    fourfold-serve [--port 8000]         # the app on http://127.0.0.1:8000/
"""
