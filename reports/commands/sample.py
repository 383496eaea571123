"""``gmm sample``: the posterior, started from EM."""

from __future__ import annotations

from reports import options

NAME = "sample"
SUMMARY = "Sample the posterior (Gibbs or NUTS), started from EM"
DESCRIPTION = ("Writes posterior.nc (posterior, sample_stats, label_invariant, log_likelihood, "
               "posterior_predictive, responsibilities) and run.json. Says in one line how the "
               "run ended; warns when r_hat > 1.01 or there are divergences.")


def add_arguments(p):
    """``sample``'s options."""
    options.data(p)
    options.model(p)
    options.out(p, "reports/out/sample-<data>-K<k>-<type>")
    options.seed(p)
    options.sampler(p)


def run(args):
    """Run ``gmm sample``."""
    from models.seeds import seed_sequence
    from reports import runs
    from reports.compare import summary
    from reports.io import ResultsFolder, write_json

    X, names, stem = runs.data(args)
    target = runs.target(args, runs.model_name(args, stem))
    with ResultsFolder(target, args.force, "sample") as folder:
        dt = runs.sample(X, args.components, args.covariance_type, args, names,
                         seed_sequence(args.seed, "--seed"),
                         posterior_predictive=runs.wants_predictive(X, args))
        dt.to_netcdf(folder.path / "posterior.nc")
        write_json(folder.path / "run.json", runs.record(
            args, names, title=f"{stem}: K={args.components} {args.covariance_type} by "
            f"{dt.attrs.get('sampler', args.sampler)}", convergence=dt.attrs.get("convergence")))
    print(summary(dt).to_string())
    print(f"divergences: {int(dt['sample_stats']['diverging'].sum())}")
    runs.report_sampling(dt)
    runs.warn_sampling(dt)
    print(f"wrote {target / 'posterior.nc'}")
