"""``gmm impute``: fill the missing cells of data from a saved model."""

from __future__ import annotations

from reports import options

NAME = "impute"
SUMMARY = "Fill the missing cells of data from a saved model"
DESCRIPTION = ("RESULTS is a results folder, or its em.nc / posterior.nc. From an EM fit each "
               "missing cell gets its conditional mean given the row's observed cells, "
               "E[x_m | x_o] (the components' conditional means weighted by the "
               "responsibilities), with its conditional sd. From a posterior (gmm sample), each "
               "draw theta imputes the cells once from p(x_m | x_o, theta); a cell's value is "
               "their mean and its sd and 5th and 95th percentiles carry the "
               "parameters' uncertainty. Writes imputed.csv (DATA's rows and the model's columns, every "
               "cell filled), missing_cells.csv (one row per missing cell), impute.nc and "
               "run.json into a new results folder, never over DATA.")


def add_arguments(p):
    """``impute``'s options."""
    p.add_argument("results", help="results folder, or an em.nc / posterior.nc file")
    options.data(p)
    options.out(p, "reports/out/impute-<data>-K<k>-<type>")
    options.seed(p)
    p.add_argument("--max-draws", type=options.positive_int, default=1000,
                   help="posterior draws used, evenly spaced over the chains (a posterior only)")


def run(args):
    """Run ``gmm impute``."""
    import numpy as np
    import xarray as xr

    from models.missing import impute
    from models.results import (
        covariance_type_of,
        is_point_estimate,
        point_of,
        point_to_datatree,
        posterior_gamma,
        posterior_imputations,
    )
    from models.seeds import seed_sequence
    from reports import runs
    from reports.commands.predict import model_and_data
    from reports.io import ResultsFolder, dataset_name, write_json
    from reports.tables import as_frame

    path, tree, X, names = model_and_data(args)
    model_names = [str(v) for v in tree["observed_data"]["feature"].values]
    absent = np.isnan(X)
    if not absent.any():
        raise options.UserError(f"{args.data!r} has no missing cell, so there is nothing to "
                                "impute (a missing cell is empty, NA or NaN).")
    K, ct = tree.attrs["n_components"], covariance_type_of(tree)
    posterior = not is_point_estimate(tree)
    mean = point_of(tree)
    if posterior:
        draws = posterior_imputations(tree, X, seed_sequence(args.seed, "--seed"),
                                      max_draws=args.max_draws)
        cells = draws[:, absent]                                   # (S, n_missing)
        value = cells.mean(axis=0)
        sd = cells.std(axis=0, ddof=1) if len(draws) > 1 else np.zeros_like(value)
        lower, upper = np.quantile(cells, [0.05, 0.95], axis=0)
        completed = X.copy()
        completed[absent] = value
        how = f"the mean of {len(draws)} posterior draws' imputations"
    else:
        full = mean.family.to_full(mean.Sigma, mean.K, mean.d)
        completed, var = impute(X, mean.pi, mean.mu, full, with_variance=True)
        value, sd = completed[absent], np.sqrt(var[absent])
        lower = upper = None
        how = "the conditional mean under the EM fit"
    rows_i, cols_j = np.nonzero(absent)
    cells_rows = [{"row": int(i) + 1, "column": model_names[j], "value": value[c], "sd": sd[c],
                   **({} if lower is None else {"q05": lower[c], "q95": upper[c]})}
                  for c, (i, j) in enumerate(zip(rows_i, cols_j))]
    target = runs.target(args, f"impute-{dataset_name(args.data)}-K{K}-{ct}")
    with ResultsFolder(target, args.force, "impute") as folder:
        as_frame([dict(zip(model_names, row)) for row in completed]).to_csv(
            folder.path / "imputed.csv", index=False)
        runs.write_rows(folder.path / "missing_cells.csv", cells_rows)
        gamma, _ = posterior_gamma(tree, X)
        dt = point_to_datatree(mean, X, model_names, gamma=gamma)
        imputed = xr.Dataset({"x": (("obs_id", "feature"), completed)},
                             coords={"obs_id": np.arange(X.shape[0]), "feature": model_names})
        dt["imputed"] = xr.DataTree(imputed)
        dt.attrs.update({"method": f"impute from {'posterior' if posterior else 'EM fit'}",
                         "model": str(path)})
        dt.to_netcdf(folder.path / "impute.nc")
        write_json(folder.path / "run.json", runs.record(
            args, model_names, model=str(path),
            title=f"{dataset_name(args.data)}: missing cells imputed by {path}"))
    print(f"imputed {int(absent.sum())} missing cells in {int(absent.any(axis=1).sum())} of "
          f"{X.shape[0]} rows with {how} in {path} (K={K} {ct})")
    print(f"wrote {target / 'imputed.csv'} and {target / 'missing_cells.csv'}")
