"""Each report kind's structure: the summary's values are the results file's, no section is empty,
captions only where they apply, and mclust's plots drawn as mclust draws them."""

import csv
import re
from html.parser import HTMLParser

import matplotlib
import numpy as np
import pytest
import xarray as xr
from matplotlib.colors import to_rgba

from models import load_faithful
from models.families import MCLUST_NAMES, family
from models.results import point_of
from reports import figures
from reports.cli import main
from reports.html import SECTIONS, model_description
from reports.joint import em_to_datatree
from tests.reports.test_cli import _synthetic_posterior

BANKNOTE = "tests/data/mclust/banknote.csv"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


class _Tables(HTMLParser):
    """Every ``<table id=...>`` of a page: its header, and its cells as (text, attributes)."""

    def __init__(self):
        super().__init__()
        self.tables, self._id, self._cell = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "id" in attrs:
            self._id = attrs["id"]
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self.tables[self._id].append([])
        elif tag in ("td", "th") and self._id:
            self._cell = ["", attrs]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._id][-1].append(tuple(self._cell))
            self._cell = None
        elif tag == "table":
            self._id = None


def tables(page):
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def values(table, key="data-value"):
    """The body's numeric cells (every column past the first) as an array."""
    return np.array([[float(c[1][key]) for c in row[1:]] for row in table[1:]])


def sections(page):
    """Section id -> its HTML after the how-to-read line."""
    found = {}
    for sid in re.findall(r'<section id="([a-z_]+)">', page):
        body = page.split(f'<section id="{sid}">')[1].split("</section>")[0]
        found[sid] = body.split('<p class="how">')[1].split("</p>", 1)[1]
    return found


def assert_no_empty_section(page):
    found = sections(page)
    assert found and list(found) == [s.id for s in SECTIONS if s.id in found]
    for sid, body in found.items():
        assert re.search(r"<img|<table|<li|<p>", body), sid


def test_fit_report_summary_is_the_results_file(tmp_path, capsys):
    assert run(capsys, "fit", BANKNOTE, "-k", "3", "--covariance-type", "VVE", "--out",
               tmp_path / "f")[0] == 0
    assert run(capsys, "report", tmp_path / "f")[0] == 0
    page = (tmp_path / "f" / "index.html").read_text()
    assert_no_empty_section(page)
    assert list(sections(page))[0] == "summary"
    t = tables(page)
    dt = xr.open_datatree(tmp_path / "f" / "em.nc")
    post = dt["posterior"]
    fit = t["summary-fit"]
    assert [c[0] for c in fit[0]] == ["estimate", "model", "K", "N", "log-likelihood", "df", "BIC",
                                      "ICL"]
    row = fit[1]
    assert row[0][0] == "EM MLE" and row[1][0] == model_description("VVE")
    assert (row[2][0], row[3][0], row[5][0]) == ("3", "200", str(point_of(dt).n_parameters))
    for cell, attr in ((row[4], "log_likelihood"), (row[6], "bic"), (row[7], "icl")):
        assert float(cell[1]["data-value"]) == dt.attrs[attr]
    gamma = dt["responsibilities"]["gamma"].values
    comp = t["summary-components"]
    assert [int(r[1][0]) for r in comp[1:]] == np.bincount(gamma.argmax(1), minlength=3).tolist()
    np.testing.assert_array_equal([float(r[2][1]["data-value"]) for r in comp[1:]],
                                  post["pi"].values[0, 0])
    names = [str(n) for n in dt["observed_data"]["feature"].values]
    mu = t["summary-mu"]
    assert [r[0][0] for r in mu[1:]] == names
    np.testing.assert_array_equal(values(mu), post["mu"].values[0, 0].T)
    for k in range(3):
        S = t[f"summary-Sigma-{k}"]
        assert [c[0] for c in S[0]] == ["feature", *names]
        np.testing.assert_array_equal(values(S), post["Sigma"].values[0, 0, k])
    # an EM-only report has no posterior draws to speak of
    assert "posterior draws" not in page and "posterior" not in sections(page)["data"]


def test_posterior_report_summary_has_means_and_intervals(tmp_path, capsys):
    X, names = load_faithful()
    res, post = _synthetic_posterior(X, names, 2)
    folder = tmp_path / "p"
    folder.mkdir()
    post.to_netcdf(folder / "posterior.nc")
    em_to_datatree(res, X, names).to_netcdf(folder / "em_map.nc")
    assert run(capsys, "report", folder)[0] == 0
    page = (folder / "index.html").read_text()
    assert_no_empty_section(page)
    t = tables(page)
    draws = xr.open_datatree(folder / "posterior.nc")["posterior"]
    flat = {v: draws[v].values.reshape(-1, *draws[v].shape[2:]) for v in ("pi", "mu", "Sigma")}
    flat["Sigma"] = np.stack([family("diag").to_full(S, 2, 2) for S in flat["Sigma"]])
    for table, v, pick in (("summary-mu", "mu", lambda a: a.T),
                           ("summary-Sigma-1", "Sigma", lambda a: a[1])):
        for key, ref in (("data-value", flat[v].mean(0)), ("data-lower", np.quantile(
                flat[v], 0.055, axis=0)), ("data-upper", np.quantile(flat[v], 0.945, axis=0))):
            np.testing.assert_allclose(values(t[table], key), pick(ref), rtol=1e-14)
    np.testing.assert_allclose([float(r[2][1]["data-upper"]) for r in t["summary-components"][1:]],
                               np.quantile(flat["pi"], 0.945, axis=0), rtol=1e-14)
    assert "89% equal-tailed interval" in page
    fit = t["summary-fit"]
    assert fit[1][0][0] == "EM MLE" and fit[2][0][0].startswith("posterior (2 chains x 40 draws")
    # the draws' caption where there are draws
    assert "50 posterior draws" in page.split('<section id="data">')[1].split("</section>")[0]


def test_select_report_lists_only_the_failed_fits_with_one_line_reasons(tmp_path, capsys):
    # 12 rows at four distinct points: K >= 5 cannot be fitted by maximum likelihood
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 3, axis=0)
    X = X + 1e-3 * np.random.default_rng(0).standard_normal(X.shape)
    path = tmp_path / "four.csv"
    path.write_text("a,b\n" + "\n".join(f"{u!r},{v!r}" for u, v in X.tolist()) + "\n")
    code, out, err = run(capsys, "select", path, "--kmax", "6", "--out", tmp_path / "s")
    assert code == 0, err
    with open(tmp_path / "s" / "select.csv") as fh:
        rows = list(csv.DictReader(fh))
    failed = {(r["K"], r["covariance_type"]) for r in rows if r["error"]}
    assert failed and len(failed) < len(rows)
    assert all("array(" not in r["error"] and "\n" not in r["error"] for r in rows)
    assert run(capsys, "report", tmp_path / "s")[0] == 0
    page = (tmp_path / "s" / "index.html").read_text()
    assert_no_empty_section(page)
    listed = re.findall(r"<li>K=(\d+) (\w+): ([^<]+)</li>", page)
    assert {(k, ct) for k, ct, _ in listed} == failed
    assert all(len(reason) < 200 for _, _, reason in listed)
    grid = tables(page)["select-bic"]
    assert [c[0] for c in grid[0]] == ["K", *MCLUST_NAMES]          # every fit, not 8 rows
    by = {(r["K"], r["covariance_type"]): r for r in rows}
    for row in grid[1:]:
        for ct, cell in zip(MCLUST_NAMES, row[1:]):
            r = by[row[0][0], ct]
            if r["error"]:
                assert cell[0] == "failed"
            else:
                assert float(cell[1]["data-value"]) == float(r["bic"])
    best = min((r for r in rows if not r["error"]), key=lambda r: float(r["bic"]))
    assert 'class="best"' in page and f"best by BIC: K={best['K']} {best['covariance_type']}" in out
    summary = tables(page)["summary-fit"][1]
    assert float(summary[6][1]["data-value"]) == float(best["bic"])


@pytest.fixture
def captured(monkeypatch):
    """The figures the report functions draw, kept open instead of saved."""
    figs = []

    def keep(fig, path, tight=True, dpi=90):
        fig.canvas.draw()
        figs.append(fig)
        return path

    monkeypatch.setattr(figures, "_save", keep)
    yield figs
    matplotlib.pyplot.close("all")


def test_uncertainty_plot_draws_every_point_and_labels_the_diagonal(rng, captured, tmp_path):
    # two far-apart clusters: nearly every uncertainty is 0, and every point is still drawn
    X = np.vstack([rng.normal(size=(150, 3)), rng.normal(size=(50, 3)) + 12])
    from em import fit

    res = fit(X, 2, "VVV")
    names = ["a", "b", "c"]
    figures.mclust_plot(tmp_path / "u.png", "uncertainty", X, names, res.params, res.gamma)
    fig = captured[-1]
    panels = [ax for ax in fig.axes if ax.collections]
    off_diagonal = [ax for ax in panels if not ax.texts]
    assert len(off_diagonal) == 3
    for ax in off_diagonal:
        assert sum(len(c.get_offsets()) for c in ax.collections) == len(X)
        assert min(min(c.get_sizes()) for c in ax.collections if len(c.get_offsets())) >= 4
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert labels == names                          # each diagonal panel says its coordinate
    assert fig.legends and fig.legends[0].get_title().get_text() == "1 - max gamma"


def test_component_colours_have_a_legend_and_match_across_figures(rng, captured, tmp_path):
    X, names = load_faithful()
    from em import fit

    res = fit(X, 2)
    figures.mclust_plot(tmp_path / "c.png", "classification", X, names, res.params, res.gamma)
    figures.ellipses(tmp_path / "d.png", X, names, {"EM MLE": res.params}, gamma=res.gamma)
    z = res.gamma.argmax(1)
    for fig in captured:
        legend = next(lg for lg in fig.legends if lg.get_texts()[0].get_text() == "component 0")
        colours = {t.get_text(): to_rgba(h.get_facecolor()) for t, h in
                   zip(legend.get_texts(), legend.legend_handles)}
        assert colours == {f"component {k}": to_rgba(figures.component_color(k)) for k in (0, 1)}
        for ax in fig.axes:       # every scatter of component k's points is in its colour
            for c in ax.collections:
                pts = c.get_offsets()
                if len(pts) and c.get_facecolors().shape[0] == 1:
                    k = z[np.flatnonzero((X[:, :2] == np.asarray(pts[0])).all(1))[0]]
                    assert np.allclose(c.get_facecolors()[0][:3],
                                       to_rgba(figures.component_color(k))[:3])


def test_bic_plot_tells_the_14_models_apart_with_the_legend_outside(captured, tmp_path):
    styles = [figures.MODEL_STYLES[m] for m in MCLUST_NAMES]
    assert len(set(c for c, _ in styles)) == 14 and len(set(m for _, m in styles)) == 14
    rows = [{"K": K, "covariance_type": ct, "bic": 100.0 * i + K, "icl": 100.0 * i + 2 * K}
            for i, ct in enumerate(MCLUST_NAMES) for K in range(1, 10)]
    rows[5]["bic"] = np.nan                          # a failed fit: a gap
    figures.selection(tmp_path / "s.png", rows)
    fig = captured[-1]
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == list(MCLUST_NAMES)
    box = legend.get_window_extent()
    assert all(box.x0 >= ax.get_window_extent().x1 for ax in fig.axes)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 14 and len({(ln.get_color(), ln.get_marker()) for ln in lines}) == 14


def test_trace_titles_clear_the_axes_above(captured, tmp_path):
    import arviz_plots as azp

    X, names = load_faithful()
    _, post = _synthetic_posterior(X, names, 2)
    figures.arviz_plot(tmp_path / "t.png", azp.plot_trace, post, var_names=["pi", "mu"])
    fig = captured[-1]
    renderer = fig.canvas.get_renderer()
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    labels = [ax.xaxis.label.get_window_extent(renderer) for ax in fig.axes
              if ax.get_xlabel()] + [ax.xaxis.get_tightbbox(renderer) for ax in fig.axes]
    assert titles
    for t in titles:
        assert not any(t.overlaps(b) for b in labels if b is not None)


def test_model_description_names_what_the_letters_constrain():
    assert model_description("VVE") == ("VVE (ellipsoidal: varying volume, varying shape, equal "
                                         "orientation)")
    assert model_description("spherical") == "VII (spherical: varying volume; scikit-learn's " \
                                             "'spherical')"
    assert model_description("EEI") == "EEI (diagonal: equal volume, equal shape)"
