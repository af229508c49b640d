"""One figure style for every paper, and figures that remember the command that made them."""

import shlex
import sys
from pathlib import Path

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
}
COMMAND_KEY = "Command"  # PNG text chunk that stores the producing command


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 4.2, height: float = 3.2, **kwargs):
    """A (figure, axes) pair in the project style; ``width``/``height`` are per panel, in inches."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)
    fig.set_layout_engine("constrained")
    return fig, axes


def current_command() -> str:
    """The command line of this process, quoted so it can be pasted back into a shell.

    A module run with ``python -m pkg.mod`` is written that way rather than as the path of its file.
    """
    argv = list(sys.argv)
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if argv and spec is not None and spec.name:
        argv[0] = "python -m " + spec.name.removesuffix(".__main__")
    return " ".join(shlex.quote(a) if i else a for i, a in enumerate(argv))


def save_figure(fig, path: str | Path, *, command: str | None = None) -> Path:
    """Save ``fig`` as PNG atomically, with the producing command stored in the file's metadata.

    ``command`` defaults to this process's command line; read it back with ``figure_command(path)``.
    """
    import matplotlib.pyplot as plt

    from fourfold.core.files import atomic_path

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figures are saved as PNG, got {path}")
    with plt.rc_context(STYLE), atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={COMMAND_KEY: command or current_command()})
    plt.close(fig)
    return path


def figure_command(path: str | Path) -> str | None:
    """The command stored in a PNG written by ``save_figure`` (None if it has none)."""
    from PIL import Image

    with Image.open(path) as image:
        return image.text.get(COMMAND_KEY)
