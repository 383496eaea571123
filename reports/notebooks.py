"""Execute the notebooks with full sample sizes and write them as HTML (``make notebooks``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from reports.io import ResultsFolder


def main(argv=None):
    """Run every notebook in ``notebooks/`` and write ``<out>/<name>.html`` (see ``ResultsFolder``).

    Parameters
    ----------
    argv : list of str or None
    """
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="reports/notebooks")
    ap.add_argument("--fast", action="store_true", help="small samples (GMM_SUITE_FAST=1)")
    args = ap.parse_args(argv)
    os.environ["GMM_SUITE_FAST"] = "1" if args.fast else "0"
    out = Path(args.out)
    # all notebooks or none, and only over HTML an earlier run of this command wrote
    with ResultsFolder(out, command="notebooks", update=True) as folder:
        for path in sorted(Path("notebooks").glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=3600, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            body, _ = HTMLExporter().from_notebook_node(nb)
            (folder.path / f"{path.stem}.html").write_text(body)
    for path in sorted(Path("notebooks").glob("*.ipynb")):
        print(f"wrote {out / path.stem}.html")


if __name__ == "__main__":
    main()
