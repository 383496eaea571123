"""``gmm sample``: the posterior, started from EM."""

from __future__ import annotations

from reports import options

NAME = "sample"
SUMMARY = "Sample the posterior (Gibbs or NUTS), started from EM's best local mode"
DESCRIPTION = ("Writes posterior.nc (posterior, sample_stats, label_invariant, log_likelihood, "
               "posterior_predictive, responsibilities, modes), modes.csv and local_modes.csv "
               "(EM's local modes and each one's share of the draws) and run.json. Says in one "
               "line how the run ended; warns when r_hat > 1.01 or there are divergences.")


def add_arguments(p):
    """``sample``'s options."""
    options.data(p)
    options.model(p, posterior=True)
    options.out(p, "reports/out/sample-<data>-K<k>-<type>")
    options.seed(p)
    options.sampler(p)
    options.modes(p)


def run(args):
    """Run ``gmm sample``."""
    from models.seeds import seed_sequence
    from reports import runs
    from reports.compare import summary
    from reports.io import ResultsFolder, write_json

    X, names, stem = runs.data(args)
    target = runs.target(args, runs.model_name(args, stem))
    seq = seed_sequence(args.seed, "--seed")
    K, ct = args.components, args.covariance_type
    with ResultsFolder(target, args.force, "sample") as folder:
        # EM's modes first: the chains start at the highest (EM's MAP from every restart that
        # did not collapse; none left refuses at once). The EM stream is child 2 of the seed,
        # the sampler keeps child 1.
        mode_map = runs.find_modes(X, K, ct, args, runs.child(seq, 2))
        start = mode_map.modes[0].params
        dt = runs.sample(X, K, ct, args, names, seq, init=start,
                         posterior_predictive=runs.wants_predictive(X, args))
        dt = runs.place_draws(mode_map, dt, X, {"EM MAP": (start.pi, start.mu)})
        dt.to_netcdf(folder.path / "posterior.nc")
        runs.write_modes(folder.path, mode_map)
        write_json(folder.path / "run.json", runs.record(
            args, names, title=f"{stem}: K={K} {ct} by {dt.attrs.get('sampler', args.sampler)}",
            modes=mode_map.summary("EM MAP"), convergence=dt.attrs.get("convergence")))
    print(summary(dt).to_string())
    if "diverging" in dt["sample_stats"]:
        print(f"divergences: {int(dt['sample_stats']['diverging'].sum())}")
    runs.report_sampling(dt)
    runs.warn_sampling(dt)
    runs.print_modes(mode_map)
    print(f"wrote {target / 'posterior.nc'}")
