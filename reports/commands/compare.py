"""``gmm compare``: EM's MLE and MAP against the posterior, scalar by scalar."""

from __future__ import annotations

from reports import options

NAME = "compare"
SUMMARY = "Compare EM (MLE and MAP) and variational Bayes with the posterior, scalar by scalar"
DESCRIPTION = ("Writes em_mle.nc, em_map.nc, vb.nc (for the conjugate families) and posterior.nc, "
               "all on the posterior's labels, comparison.csv, modes.csv and local_modes.csv "
               "(EM's local modes, each with its share of the draws, and the mode each EM "
               "estimate belongs to) and run.json. The table gives each estimate, the posterior's "
               "mean and sd, the posterior mean within EM's mode (mode_mean), and the share of "
               "the posterior's draws inside VB's interval (vb_coverage).")


def add_arguments(p):
    """``compare``'s options."""
    options.data(p)
    options.model(p, posterior=True)
    options.out(p, "reports/out/compare-<data>-K<k>-<type>")
    options.seed(p)
    options.sampler(p)
    options.modes(p)


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
    em_seq, sampler_seq, vb_seq, modes_seq = seed_sequence(args.seed, "--seed").spawn(4)
    K, ct = args.components, args.covariance_type
    with_vb = family(ct).conjugate
    with ResultsFolder(target, args.force, "compare") as folder:
        mle, mapped, em_mle, em_map = runs.em_pair(X, args, names, em_seq)
        dt = runs.sample(X, K, ct, args, names, sampler_seq,
                         init=mapped.params, posterior_predictive=runs.wants_predictive(X, args))
        mode_map = runs.find_modes(X, K, ct, args, modes_seq)
        dt = runs.place_draws(mode_map, dt, X, {"EM MAP": (mapped.params.pi, mapped.params.mu),
                                                "EM MLE": (mle.params.pi, mle.params.mu)})
        for name, tree in (("em_mle", em_mle), ("em_map", em_map), ("posterior", dt)):
            tree.to_netcdf(folder.path / f"{name}.nc")
        rows, agreement = compare(em_map, dt, em_mle_dt=em_mle)
        if with_vb:      # VB under the same prior, on the posterior's (the MAP's) labels
            fit_seq, draw_seq = vb_seq.spawn(2)
            vb = joint.align(runs.vb(X, args, fit_seq, progress=False), mapped.params)
            vb_dt = joint.vb_to_datatree(vb, X, names, draws=dt["posterior"].sizes["chain"]
                                         * dt["posterior"].sizes["draw"], random_seed=draw_seq)
            vb_dt.to_netcdf(folder.path / "vb.nc")
            rows = compare_vb(rows, vb_dt, dt)
        runs.write_rows(folder.path / "comparison.csv", rows)
        runs.write_modes(folder.path, mode_map)
        write_json(folder.path / "run.json", runs.record(
            args, names, agreement=agreement, modes=mode_map.summary("EM MAP"),
            convergence=dt.attrs.get("convergence"),
            title=f"{stem}: K={K} {ct} by EM, {'VB ' if with_vb else ''}and "
                  f"{dt.attrs.get('sampler', args.sampler)}"))
    print(format_table(rows, ["parameter", "em_mle", "em", "vb", "mode_mean", "mean", "vb_sd",
                              "sd", "vb_coverage", "lower", "upper", "r_hat", "ess_bulk"]
                       if with_vb else ["parameter", "em_mle", "em", "mode_mean", "mean", "sd",
                                        "lower", "upper", "inside", "r_hat", "ess_bulk"]))
    if with_vb:
        cover = [r["vb_coverage"] for r in rows]
        print(f"VB's {ci_label()} intervals hold {min(cover):.0%}-{max(cover):.0%} of the "
              f"posterior's draws (median {statistics.median(cover):.0%}); its sds are "
              f"{min(r['vb_sd_ratio'] for r in rows):.2f}-"
              f"{max(r['vb_sd_ratio'] for r in rows):.2f} of the posterior's.")
    print("responsibilities: mean |EM - posterior| = {mean_abs_gamma_diff:.4g}, max = "
          "{max_abs_gamma_diff:.4g}, same label {label_agreement:.1%}".format(**agreement))
    runs.report_sampling(dt)
    runs.warn_sampling(dt)
    runs.print_modes(mode_map, ("EM MAP", "EM MLE"))
    print(f"wrote {target / 'comparison.csv'}")
