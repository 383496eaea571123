"""``gmm select``: K and the covariance type by BIC or ICL, as mclust's ``mclustBIC``."""

from __future__ import annotations

from reports import options

NAME = "select"
SUMMARY = "Choose K and the covariance type by BIC or ICL"
DESCRIPTION = ("Fits every K in --kmin..--kmax and every type in --types as mclust's "
               "mclustBIC does: each from one model-based hierarchical clustering of the data, "
               "to mclust's tolerance, the best three then to EM's own. Writes select.csv (one "
               "row per fit, failures with their reason) and em.nc (the best fit); 'gmm report' "
               "draws the BIC plot and the chosen model.")


def add_arguments(p):
    """``select``'s options."""
    options.data(p)
    options.out(p, "reports/out/select-<data>-K<kmin>-<kmax>-<types>")
    options.seed(p)
    p.add_argument("--kmin", type=options.positive_int, default=1, help="smallest K")
    p.add_argument("--kmax", type=options.positive_int, default=9, help="largest K")
    p.add_argument("--types", type=options.covariance_types,
                   default=list(options.MCLUST_NAMES),
                   help="comma-separated covariance types (choices: "
                   f"{', '.join(options.COVARIANCE_TYPES)}; default: mclust's 14 models)")
    p.add_argument("--criterion", choices=("bic", "icl"), default="bic",
                   help="criterion to minimise (scikit-learn's sign)")
    p.add_argument("--map", action="store_true", help="MAP fits under mclust's default prior")


def run(args):
    """Run ``gmm select``."""
    from models.families import MCLUST_NAMES
    from models.seeds import seed_sequence
    from reports import joint, runs
    from reports.io import ResultsFolder, write_json
    from reports.select import best, bic_table, ranked, select_grid
    from reports.tables import format_table

    if args.kmin > args.kmax:
        raise options.UserError(f"--kmin {args.kmin} is above --kmax {args.kmax}; swap them.")
    X, names, stem = runs.data(args)
    types = "all" if list(args.types) == list(MCLUST_NAMES) else "+".join(args.types)
    target = runs.target(args, f"select-{stem}-K{args.kmin}-{args.kmax}-{types}")
    with ResultsFolder(target, args.force, "select") as folder:
        rows, fits = select_grid(X, args.kmax, args.types, use_prior=args.map,
                                 random_state=seed_sequence(args.seed, "--seed"), progress=True,
                                 k_min=args.kmin, return_fits=True)
        if all(r["error"] for r in rows):
            raise options.UserError("every fit in the grid failed: " + "; ".join(
                f"{ct} (K={ks}): {why.rstrip('.')}" for ct, ks, why in failures(rows)) + ".")
        runs.write_rows(folder.path / "select.csv", rows)
        top = best(rows, args.criterion)
        res = fits[top["K"], top["covariance_type"]]
        joint.em_to_datatree(res, X, names).to_netcdf(folder.path / "em.nc")
        write_json(folder.path / "run.json", runs.record(
            args, names, title=f"{stem}: model selection by {args.criterion.upper()}",
            model=f"K={top['K']} {top['covariance_type']}"))
    print(bic_table(rows, args.criterion))
    failed = failures(rows)
    for ct, ks, why in failed:
        print(f"failed: {ct} (K={ks}): {why}")
    for r in rows:
        if not r["error"] and not r["converged"]:
            print(f"not converged: K={r['K']} {r['covariance_type']}: EM stopped at its iteration "
                  "limit; its criteria are the last iterate's")
    for name, lo, hi in args.label_columns if failed else []:
        print(f"note: column {name!r} holds only the integers {lo} to {hi}; if it is a label "
              f"(as gmm simulate's z), leave it out with --exclude {name}")
    print(format_table([r for r in ranked(rows, args.criterion) if not r["error"]][:3],
                       ["K", "covariance_type", "log_likelihood", "n_parameters", "bic", "icl"],
                       floatfmt="{:.2f}"))
    print(f"best by {args.criterion.upper()}: K={top['K']} {top['covariance_type']}")
    print(f"wrote {target / 'select.csv'} and {target / 'em.nc'} (the best fit); "
          f"'gmm report {target}' draws them")


def failures(rows):
    """The failed fits, one entry per covariance type and reason: (type, the Ks, the reason).

    The Ks read as ranges ("1-3, 5"): a type without a conjugate prior under ``--map`` fails
    for every K for one reason, said once.
    """
    groups = {}
    for r in rows:
        if r["error"]:
            groups.setdefault((r["covariance_type"], r["error"]), []).append(int(r["K"]))
    out = []
    for (ct, why), ks in groups.items():
        runs, start = [], ks[0]
        for a, b in zip(ks, ks[1:] + [None]):
            if b != a + 1:
                runs.append(str(start) if start == a else f"{start}-{a}")
                start = b
        out.append((ct, ", ".join(runs), why))
    return out
