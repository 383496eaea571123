"""``gmm fit``: EM, maximum likelihood or MAP."""

from __future__ import annotations

from reports import options

NAME = "fit"
SUMMARY = "Fit by EM, or by variational Bayes"
DESCRIPTION = ("Maximum likelihood, or MAP under mclust's default prior with --map. Writes em.nc "
               "(an ArviZ DataTree) and run.json. With --vb: the variational posterior under the "
               "same prior; writes vb.nc (its draws, means and factors).")


def add_arguments(p):
    """``fit``'s options."""
    options.data(p)
    options.model(p)
    options.out(p, "reports/out/fit-<data>-K<k>-<type>")
    options.seed(p)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--map", action="store_true",
                     help="MAP under mclust's default conjugate prior")
    how.add_argument("--vb", action="store_true",
                     help="variational Bayes under the same prior (conjugate families only)")
    p.add_argument("--n-init", type=options.positive_int, default=5,
                   help="EM restarts (best wins)")
    p.add_argument("--max-iter", type=options.positive_int, default=1000,
                   help="EM iterations per restart")


def run(args):
    """Run ``gmm fit``."""
    from models.seeds import seed_sequence
    from reports import joint, runs
    from reports.io import ResultsFolder, write_json
    from reports.tables import format_table

    X, names, stem = runs.data(args)
    target = runs.target(args, runs.model_name(args, stem))
    if args.vb:
        return _run_vb(args, X, names, stem, target)
    with ResultsFolder(target, args.force, "fit") as folder:
        res = runs.fit(X, args, args.map, seed_sequence(args.seed, "--seed"))
        dt = joint.em_to_datatree(res, X, names)
        dt.to_netcdf(folder.path / "em.nc")
        write_json(folder.path / "run.json", runs.record(
            args, names, method=dt.attrs["method"],
            title=f"{stem}: K={args.components} {args.covariance_type} by EM"))
    print(format_table(runs.params_table(res.params, names)))
    print(f"log-likelihood {res.log_likelihood:.6f}  BIC {res.bic:.4f}  AIC {res.aic:.4f}  "
          f"ICL {res.icl:.4f}  iterations {res.n_iter}  converged {res.converged}")
    print(f"wrote {target / 'em.nc'}")


def _run_vb(args, X, names, stem, target):
    """``gmm fit --vb``: the variational posterior, its table and vb.nc."""
    from models.seeds import seed_sequence
    from reports import joint, runs
    from reports.io import ResultsFolder, write_json
    from reports.tables import format_table

    fit_seq, draw_seq = seed_sequence(args.seed, "--seed").spawn(2)
    res = runs.vb(X, args, fit_seq)
    with ResultsFolder(target, args.force, "fit") as folder:
        dt = joint.vb_to_datatree(res, X, names, random_seed=draw_seq)
        dt.to_netcdf(folder.path / "vb.nc")
        write_json(folder.path / "run.json", runs.record(
            args, names, method="vb",
            title=f"{stem}: K={args.components} {args.covariance_type} by variational Bayes"))
    print(format_table(runs.params_table(res.params, names)))
    print(f"ELBO {res.elbo:.6f}  effective components {res.effective_n_components_} of "
          f"{args.components}  iterations {res.n_iter}  converged {res.converged}")
    print("(the table: E[pi], E[mu] and E[Sigma^-1]^-1; vb.nc holds draws of q and its means)")
    print(f"wrote {target / 'vb.nc'}")
