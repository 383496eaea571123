"""``gmm compare``: EM's MLE and MAP against the posterior, scalar by scalar."""

from __future__ import annotations

from reports import options

NAME = "compare"
SUMMARY = "Compare EM (MLE and MAP) and variational Bayes with the posterior, scalar by scalar"
DESCRIPTION = ("Writes em_mle.nc, em_map.nc, vb.nc (for the conjugate families) and posterior.nc, "
               "all on the posterior's labels, comparison.csv and run.json. The table gives each "
               "estimate, the posterior's mean and sd, and the share of the posterior's draws "
               "inside VB's interval (vb_coverage).")


def add_arguments(p):
    """``compare``'s options."""
    options.data(p)
    options.model(p)
    options.out(p, "reports/out/compare-<data>-K<k>-<type>")
    options.seed(p)
    options.sampler(p)


def run(args):
    """Run ``gmm compare``."""
    import statistics

    from models.families import family
    from models.seeds import seed_sequence
    from reports import joint, runs
    from reports.compare import ci_label, compare, compare_vb
    from reports.io import ResultsFolder, write_json
    from reports.tables import format_table

    X, names, stem = runs.data(args)
    target = runs.target(args, runs.model_name(args, stem))
    em_seq, sampler_seq, vb_seq = seed_sequence(args.seed, "--seed").spawn(3)
    with_vb = family(args.covariance_type).conjugate
    with ResultsFolder(target, args.force, "compare") as folder:
        mle, mapped, em_mle, em_map = runs.em_pair(X, args, names, em_seq)
        dt = runs.sample(X, args.components, args.covariance_type, args, names, sampler_seq,
                         init=mapped.params, posterior_predictive=runs.wants_predictive(X, args))
        for name, tree in (("em_mle", em_mle), ("em_map", em_map), ("posterior", dt)):
            tree.to_netcdf(folder.path / f"{name}.nc")
        rows, agreement = compare(em_map, dt, em_mle_dt=em_mle)
        if with_vb:      # VB under the same prior, on the posterior's (the MAP's) labels
            fit_seq, draw_seq = vb_seq.spawn(2)
            vb = joint.align(runs.vb(X, args, fit_seq, progress=False), mapped.params)
            vb_dt = joint.vb_to_datatree(vb, X, names, draws=args.chains * args.draws,
                                         random_seed=draw_seq)
            vb_dt.to_netcdf(folder.path / "vb.nc")
            rows = compare_vb(rows, vb_dt, dt)
        runs.write_rows(folder.path / "comparison.csv", rows)
        write_json(folder.path / "run.json", runs.record(
            args, names, agreement=agreement,
            title=f"{stem}: K={args.components} {args.covariance_type} by EM, "
                  f"{'VB ' if with_vb else ''}and NUTS"))
    print(format_table(rows, ["parameter", "em_mle", "em", "vb", "mean", "vb_sd", "sd",
                              "vb_coverage", "lower", "upper", "r_hat", "ess_bulk"]
                       if with_vb else ["parameter", "em_mle", "em", "mean", "sd", "lower",
                                        "upper", "inside", "r_hat", "ess_bulk"]))
    if with_vb:
        cover = [r["vb_coverage"] for r in rows]
        print(f"VB's {ci_label()} intervals hold {min(cover):.0%}-{max(cover):.0%} of the "
              f"posterior's draws (median {statistics.median(cover):.0%}); its sds are "
              f"{min(r['vb_sd_ratio'] for r in rows):.2f}-"
              f"{max(r['vb_sd_ratio'] for r in rows):.2f} of the posterior's.")
    print("responsibilities: mean |EM - posterior| = {mean_abs_gamma_diff:.4g}, max = "
          "{max_abs_gamma_diff:.4g}, same label {label_agreement:.1%}".format(**agreement))
    runs.warn_sampling(dt)
    print(f"wrote {target / 'comparison.csv'}")
