"""``gmm compare``: EM's MLE and MAP against the posterior, scalar by scalar."""

from __future__ import annotations

from reports import options

NAME = "compare"
SUMMARY = "Compare EM (MLE and MAP) with the posterior, scalar by scalar"
DESCRIPTION = ("Writes em_mle.nc, em_map.nc and posterior.nc (all on the posterior's labels), "
               "comparison.csv and run.json.")


def add_arguments(p):
    """``compare``'s options."""
    options.data(p)
    options.model(p)
    options.out(p, "reports/out/compare-<data>-K<k>-<type>")
    options.seed(p)
    options.sampler(p)


def run(args):
    """Run ``gmm compare``."""
    from models.seeds import seed_sequence
    from reports import runs
    from reports.compare import compare
    from reports.io import ResultsFolder, write_json
    from reports.tables import format_table

    X, names, stem = runs.data(args)
    target = runs.target(args, runs.model_name(args, stem))
    em_seq, sampler_seq = seed_sequence(args.seed, "--seed").spawn(2)
    with ResultsFolder(target, args.force, "compare") as folder:
        mle, mapped, em_mle, em_map = runs.em_pair(X, args, names, em_seq)
        dt = runs.sample(X, args.components, args.covariance_type, args, names, sampler_seq,
                         init=mapped.params, posterior_predictive=runs.wants_predictive(X, args))
        for name, tree in (("em_mle", em_mle), ("em_map", em_map), ("posterior", dt)):
            tree.to_netcdf(folder.path / f"{name}.nc")
        rows, agreement = compare(em_map, dt, em_mle_dt=em_mle)
        runs.write_rows(folder.path / "comparison.csv", rows)
        write_json(folder.path / "run.json", runs.record(
            args, names, agreement=agreement,
            title=f"{stem}: K={args.components} {args.covariance_type} by EM and NUTS"))
    print(format_table(rows, ["parameter", "em_mle", "em", "mean", "sd", "lower", "upper",
                              "inside", "r_hat", "ess_bulk"]))
    print("responsibilities: mean |EM - posterior| = {mean_abs_gamma_diff:.4g}, max = "
          "{max_abs_gamma_diff:.4g}, same label {label_agreement:.1%}".format(**agreement))
    runs.warn_sampling(dt)
    print(f"wrote {target / 'comparison.csv'}")
