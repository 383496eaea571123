"""``gmm predict``: classify new data with a saved model."""

from __future__ import annotations

from reports import options

NAME = "predict"
SUMMARY = "Classify new data with a saved model"
DESCRIPTION = ("RESULTS is a results folder, or its em.nc / posterior.nc. Writes predict.csv: one "
               "row per observation with the most likely component, its uncertainty (1 - max "
               "gamma, as mclust reports) and gamma for every component. From a posterior, gamma "
               "is averaged over the draws. By default the model's own columns are taken from "
               "DATA by name.")

#: the files a results folder may hold a model in, the posterior first
MODEL_FILES = ("posterior.nc", "em.nc", "em_map.nc", "em_mle.nc")


def add_arguments(p):
    """``predict``'s options."""
    p.add_argument("results", help="results folder, or an em.nc / posterior.nc file")
    options.data(p)
    options.out(p, "reports/out/predict-<data>-K<k>-<type>")


def load_model(source):
    """The tree a prediction uses: a folder's posterior.nc, else its EM fit; or the file given."""
    from pathlib import Path

    import xarray as xr

    path = Path(source)
    if path.is_dir():
        for name in MODEL_FILES:
            if (path / name).is_file():
                return path / name, xr.open_datatree(path / name)
        raise options.UserError(f"{source!r} holds no model (posterior.nc or em.nc); run gmm fit "
                                "or gmm sample first.")
    if path.is_file() and path.suffix == ".nc":
        return path, xr.open_datatree(path)
    raise options.UserError(f"results {source!r} is neither a results folder nor an .nc file.")


def model_and_data(args):
    """The model (:func:`load_model`) and the data to apply it to, its columns by the model's names.

    Returns
    -------
    path : pathlib.Path
    tree : xarray.DataTree
    X : ndarray of shape (N, d)
    names : list of str
    """
    from reports.io import columns_present, load_data

    path, tree = load_model(args.results)
    model_names = [str(v) for v in tree["observed_data"]["feature"].values]
    read = options.read_options(args)
    columns = options.split_names(args.columns) or columns_present(
        args.data, model_names, **{k: read[k] for k in ("sep", "decimal", "header")})
    X, names = load_data(args.data, columns, options.split_names(args.exclude), **read)
    if X.shape[1] != len(model_names):
        raise options.UserError(
            f"the model in {str(path)!r} has {len(model_names)} features "
            f"({', '.join(model_names)}) but the data give {X.shape[1]} ({', '.join(names)}); "
            "choose them with --columns.")
    return path, tree, X, names


def run(args):
    """Run ``gmm predict``."""
    import numpy as np

    from models.results import (
        covariance_type_of,
        is_point_estimate,
        point_to_datatree,
        posterior_gamma,
    )
    from reports import runs
    from reports.io import ResultsFolder, dataset_name, write_json

    path, tree, X, names = model_and_data(args)
    K, ct = tree.attrs["n_components"], covariance_type_of(tree)
    gamma, mean = posterior_gamma(tree, X)
    source = "EM fit" if is_point_estimate(tree) else "posterior"
    target = runs.target(args, f"predict-{dataset_name(args.data)}-K{K}-{ct}")
    with ResultsFolder(target, args.force, "predict") as folder:
        label = gamma.argmax(axis=1)
        rows = [{"row": i + 1, "component": int(label[i]), "uncertainty": 1.0 - gamma[i].max(),
                 **{f"gamma_{k}": gamma[i, k] for k in range(K)}} for i in range(X.shape[0])]
        runs.write_rows(folder.path / "predict.csv", rows)
        pred = point_to_datatree(mean, X, names, gamma=gamma)
        pred.attrs.update({"method": f"predict from {source}", "model": str(path)})
        pred.to_netcdf(folder.path / "predict.nc")
        write_json(folder.path / "run.json", runs.record(
            args, names, title=f"{dataset_name(args.data)} classified by {path}", model=str(path)))
    counts = np.bincount(label, minlength=K)
    print(f"classified {X.shape[0]} observations with the {source} in {path} (K={K} {ct}): "
          + ", ".join(f"component {k}: {counts[k]}" for k in range(K))
          + f"; mean uncertainty {np.mean(1 - gamma.max(axis=1)):.4f}")
    print(f"wrote {target / 'predict.csv'}")
