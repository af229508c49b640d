"""``python -m fourfold experiment=<paper>/<preset> [key=value ...]``."""

from fourfold.core.cli import main

if __name__ == "__main__":
    main()
