"""``gmm demo``: the whole pipeline on Old Faithful, with a helper process on a second core."""

from __future__ import annotations

from reports import options

NAME = "demo"
SUMMARY = "Run the whole pipeline on Old Faithful"
DESCRIPTION = ("Selects K and the type by BIC, fits the MLE, MAP and variational Bayes, samples, "
               "compares, and renders the report.")


def add_arguments(p):
    """``demo``'s options."""
    options.out(p, "reports/out/demo")
    options.seed(p)
    p.add_argument("--kmax", type=options.positive_int, default=4,
                   help="largest K in the selection")
    options.sampler(p)


def helper_ready(sampler):
    """Start a helper process: Ctrl-C is the parent's to handle; import the sampler.

    The imports take several seconds, spent while the parent selects the model.
    """
    import signal
    import threading

    from tqdm import tqdm

    from models.pymc.routes import route

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # tqdm's default lock is a process lock: a named semaphore that the resource tracker reports
    # as leaked when a Ctrl-C terminates this process. It draws no bars; a thread lock will do.
    tqdm.set_lock(threading.RLock())
    route(sampler).warm_up()


def sample_neighbours(X, Ks, covariance_type, args, names, out, seqs, progressbar=True):
    """Sample each K in ``Ks`` (the LOO table's neighbours) into ``out/posterior_K{K}.nc``.

    Returns
    -------
    dict
        ``{"sample_K{K}_s": seconds}``.
    """
    import time

    from reports import runs

    timings = {}
    for K, seq in zip(Ks, seqs):
        t = time.perf_counter()
        dt = runs.sample(X, K, covariance_type, args, names, seq, progressbar=progressbar)
        dt.to_netcdf(out / f"posterior_K{K}.nc")
        timings[f"sample_K{K}_s"] = time.perf_counter() - t
    return timings


def run(args):
    """Run ``gmm demo``: select by BIC, fit MLE and MAP, sample, compare, report."""
    import multiprocessing
    import os
    import time

    from reports import runs
    from reports.io import ResultsFolder

    t0 = time.perf_counter()
    timings = {}
    args.data, args.columns, args.exclude = "faithful", None, None
    args.sep = args.decimal = args.index_col = None
    args.no_header = args.complete_rows = False
    X, names, _ = runs.data(args)
    target = runs.target(args, "demo")
    # With two cores a helper process samples the LOO table's neighbours (K + 1, the overfitted
    # and dearest one, then K - 1) while this one fits the EM pair, samples the chosen model,
    # compares and draws its figures; it starts now, so that its imports overlap the selection.
    pool = (multiprocessing.get_context("spawn").Pool(1, helper_ready, (args.sampler,))
            if (os.cpu_count() or 1) >= 2 else None)
    try:
        with ResultsFolder(target, args.force, "demo") as folder:
            _demo(X, names, args, folder.path, pool, t0, timings)
    except BaseException:
        if pool is not None:        # Ctrl-C or an error: stop the helper where it is
            pool.terminate()
            pool.join()
        raise
    if pool is not None:
        # its work is done: let it exit on its own rather than terminate it, so that its
        # libraries clean up after themselves. _demo closed it as soon as the neighbours were
        # in, so its 1.4-1.7 s of shutdown overlap the report rather than follow it.
        pool.close()
        pool.join()
    print(f"[5/5] report: {target / 'index.html'} ({time.perf_counter() - t0:.0f} s in all)")


def _demo(X, names, args, out, pool, t0, timings):
    """The demo's steps, writing into ``out``; ``pool`` (or None) samples a neighbour."""
    import argparse
    import shutil
    import time

    from models.families import SKLEARN_TYPES
    from models.seeds import seed_sequence
    from reports import runs
    from reports.compare import compare
    from reports.html import render, sections
    from reports.io import write_json
    from reports.select import best, select_grid

    select_seq, em_seq, sampler_seq, *neighbour_seqs, vb_seq, modes_seq = seed_sequence(
        args.seed, "--seed").spawn(7)
    # the demo samples its choice with PyMC: choose among the families the PyMC model has
    rows = select_grid(X, args.kmax, SKLEARN_TYPES, random_state=select_seq, progress=True)
    runs.write_rows(out / "select.csv", rows)
    top = best(rows, "bic")
    K, ct = top["K"], top["covariance_type"]
    timings["select_s"] = time.perf_counter() - t0
    print(f"[1/5] best by BIC: K={K} {ct} (BIC {top['bic']:.2f})")
    args.components, args.covariance_type = K, ct
    # the neighbours only feed the LOO table: 2 chains x 500 draws are plenty for PSIS-LOO
    short = argparse.Namespace(**{**vars(args), "chains": min(args.chains, 2),
                                  "draws": min(args.draws or 500, 500),
                                  "tune": min(args.tune or 500, 500)})
    neighbours = [K2 for K2 in (K - 1, K + 1) if 1 <= K2 <= args.kmax]
    seqs = dict(zip((K - 1, K + 1), neighbour_seqs))
    # with a helper it samples both neighbours (the dearer, K + 1, first), while this process
    # runs the EM pair, samples the chosen model, compares it with EM and draws its figures
    helper, here = (neighbours[::-1], []) if pool is not None else ([], neighbours)
    t1 = time.perf_counter()
    if helper:   # it needs no EM fit of ours: it starts before the EM pair
        loo = pool.apply_async(sample_neighbours, (X, helper, ct, short, names, out,
                                                   [seqs[k] for k in helper], False))
    mle, mapped, em_mle, em_map = runs.em_pair(X, args, names, em_seq)
    em_mle.to_netcdf(out / "em_mle.nc")
    em_map.to_netcdf(out / "em_map.nc")
    print(f"[2/5] EM MLE log-lik {mle.log_likelihood:.3f}; MAP log-posterior "
          f"{mapped.log_posterior:.3f}")
    t_nuts = time.perf_counter()
    dt = runs.sample(X, K, ct, args, names, sampler_seq, init=mapped.params,
                     posterior_predictive=True)
    mode_map = runs.find_modes(X, K, ct, args, modes_seq)
    dt = runs.place_draws(mode_map, dt, X, {"EM MAP": (mapped.params.pi, mapped.params.mu),
                                            "EM MLE": (mle.params.pi, mle.params.mu)})
    runs.write_modes(out, mode_map)
    dt.to_netcdf(out / "posterior.nc")
    shutil.copyfile(out / "posterior.nc", out / f"posterior_K{K}.nc")  # the LOO table's copy
    timings["sample_s"] = time.perf_counter() - t_nuts
    timings.update(sample_neighbours(X, here, ct, short, names, out, [seqs[k] for k in here]))
    rows_c, agreement = compare(em_map, dt, em_mle_dt=em_mle)
    rows_c = _with_vb(X, args, names, out, mapped.params, dt, rows_c, vb_seq)
    runs.write_rows(out / "comparison.csv", rows_c)
    ready = None
    if helper:
        # the report's sections on the chosen model while the helper finishes the neighbours
        t2 = time.perf_counter()
        ready = sections(out, skip=("loo", "record"))
        timings["report_early_s"] = time.perf_counter() - t2
        timings.update(loo.get())
        # its work is done: it exits (on its own, see run) while this one renders
        pool.close()
    line = (f"[3/5] {dt.attrs.get('sampler', args.sampler)}: {dt.attrs.get('convergence', '')}; "
            f"{timings['sample_s']:.1f} s")
    if neighbours:
        where = "in a second process" if helper else "after it"
        parts = [f"K = {K2} {timings[f'sample_K{K2}_s']:.1f} s" for K2 in neighbours]
        line += (f"; for the LOO table, {short.chains} x {short.draws} {where}: "
                 f"{', '.join(parts)}")
        if "report_early_s" in timings:
            line += f" (meanwhile the report's K = {K} figures, {timings['report_early_s']:.1f} s)"
        line += f"; {time.perf_counter() - t1:.1f} s in all, with the EM pair"
    print(line)
    runs.warn_sampling(dt)
    worst = max(r["r_hat"] for r in rows_c)
    cover = sorted(r["vb_coverage"] for r in rows_c)
    print(f"[4/5] max r_hat {worst:.4f}; mean |EM gamma - posterior| "
          f"{agreement['mean_abs_gamma_diff']:.4f}; VB's intervals hold {cover[0]:.0%}-"
          f"{cover[-1]:.0%} of the posterior's draws; {mode_map.summary('EM MAP')}")
    timings["total_before_report_s"] = time.perf_counter() - t0
    write_json(out / "run.json", runs.record(
        args, names, title=f"Old Faithful: K={K} {ct} by EM, VB and "
        f"{dt.attrs.get('sampler', args.sampler)}",
        model=f"K={K} {ct}", convergence=dt.attrs.get("convergence"),
        modes=mode_map.summary("EM MAP"),
        timings=timings, label_alignment=f"{dt.attrs.get('relabel_draws_permuted', 0)} draws "
        "permuted onto the EM MAP labels (Hungarian matching)", agreement=agreement))
    render(out, ready=ready)


def _with_vb(X, args, names, out, reference, post, rows, seq):
    """Variational Bayes on the posterior's labels: vb.nc, and its columns in the comparison."""
    from reports import joint, runs
    from reports.compare import compare_vb

    fit_seq, draw_seq = seq.spawn(2)
    vb = joint.align(runs.vb(X, args, fit_seq, progress=False), reference)
    vb_dt = joint.vb_to_datatree(vb, X, names, draws=post["posterior"].sizes["chain"]
                                 * post["posterior"].sizes["draw"], random_seed=draw_seq)
    vb_dt.to_netcdf(out / "vb.nc")
    return compare_vb(rows, vb_dt, post)
