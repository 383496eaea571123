"""``gmm simulate``: draw a data set from a mixture, with its labels."""

from __future__ import annotations

from reports import options

NAME = "simulate"
SUMMARY = "Draw a data set from a mixture"
DESCRIPTION = ("Writes simulated.csv (columns x0.., z), params.json and simulated.nc (the true "
               "mixture, for gmm report).")


def add_arguments(p):
    """``simulate``'s options."""
    options.out(p, "reports/out/simulate-n<n>-d<d>-K<k>-<type>")
    options.seed(p)
    p.add_argument("-k", "--components", type=options.positive_int, default=3,
                   help="number of components K of the mixture drawn from the prior")
    p.add_argument("--covariance-type", choices=options.COVARIANCE_TYPES, default="full",
                   help="covariance structure of the mixture drawn from the prior")
    p.add_argument("-n", "--n-samples", type=options.positive_int, default=500,
                   help="observations")
    p.add_argument("-d", "--dim", type=options.positive_int, default=2, help="dimension")
    p.add_argument("--params", help="draw from the fit in this em.nc (or its folder) instead of "
                   "a mixture drawn from the prior; -k, -d and --covariance-type then follow it")


def run(args):
    """Run ``gmm simulate``."""
    from pathlib import Path

    import numpy as np
    import pandas as pd
    import xarray as xr

    from models.prior import Prior, sample_params
    from models.results import point_of, point_to_datatree
    from models.seeds import seed_sequence
    from models.simulation import simulate
    from reports import runs
    from reports.io import ResultsFolder, write_json

    params_seq, data_seq = seed_sequence(args.seed, "--seed").spawn(2)
    if args.params:
        path = Path(args.params)
        path = path / "em.nc" if path.is_dir() else path
        if not path.is_file():
            raise options.UserError(f"--params {args.params!r}: no em.nc there; pass the em.nc "
                                    "that 'gmm fit' wrote, or its folder.")
        params = point_of(xr.open_datatree(path))
    else:
        d = args.dim
        prior = Prior(alpha=2.0, m0=np.zeros(d), kappa0=0.05, nu0=d + 3.0,
                      Psi0=np.eye(d) * (d + 3))
        params = sample_params(prior, args.components, d, args.covariance_type, params_seq)
    name = f"simulate-n{args.n_samples}-d{params.d}-K{params.K}-{params.covariance_type}"
    target = runs.target(args, name)
    with ResultsFolder(target, args.force, "simulate") as folder:
        X, z = simulate(params, args.n_samples, rng=data_seq)
        names = [f"x{j}" for j in range(X.shape[1])]
        pd.DataFrame(X, columns=names).assign(z=z).to_csv(folder.path / "simulated.csv",
                                                          index=False)
        write_json(folder.path / "params.json", {"pi": params.pi, "mu": params.mu,
                                                 "Sigma": params.Sigma,
                                                 "covariance_type": params.covariance_type})
        truth = point_to_datatree(params, X, names)
        truth.attrs["method"] = "truth"
        truth.to_netcdf(folder.path / "simulated.nc")
        write_json(folder.path / "run.json", runs.record(args, names, title=f"Simulated: {name}"))
    print(f"wrote {X.shape[0]} draws from a {params.K}-component {params.covariance_type} "
          f"mixture to {target / 'simulated.csv'}")
