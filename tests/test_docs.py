"""The README is a front door and the docs cannot drift: tables from JSON, modules listed, links live."""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("models", "em", "reports")
README_LIMIT = 12 * 1024


def _generator():
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "benchmarks/docs_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


docs_tables = _generator()


def _section(text, title):
    """The body of the Markdown section ``## title``, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"no '## {title}' section"
    return match.group(1)


# ---------------------------------------------------------------------------------------------
# (a) every generated table equals what its JSON gives
# ---------------------------------------------------------------------------------------------
def test_every_table_equals_its_json():
    stale = docs_tables.stale_tables()
    assert not stale, ("tables that differ from their benchmarks/results_*.json (run "
                       f"`python benchmarks/docs_tables.py`): {stale}")


def test_the_docs_have_generated_tables_from_every_json():
    pages = "".join(p.read_text() for p in docs_tables.pages())
    used = {m["name"].split(".")[0] for m in docs_tables.MARKER.finditer(pages)}
    results = {p.stem.removeprefix("results_") for p in (ROOT / "benchmarks").glob("results_*.json")}
    assert results <= used, f"results without a table in the docs: {sorted(results - used)}"


def test_a_changed_json_value_is_caught(tmp_path):
    bench = tmp_path / "benchmarks"
    shutil.copytree(ROOT / "benchmarks", bench, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = bench / "results_em_vs_sklearn.json"
    data = json.loads(path.read_text())
    data["results"][1]["sklearn_s_per_iter"] *= 1.5             # 1.95 s becomes 2.92 s
    path.write_text(json.dumps(data))
    assert docs_tables.stale_tables(bench_dir=bench) == ["docs/performance.md: em_vs_sklearn"]

    data = json.loads((ROOT / "benchmarks/results_pymc_sampling_routes.json").read_text())
    data["rows"][0]["same_draws"] = False                      # a yes becomes a no
    (bench / "results_pymc_sampling_routes.json").write_text(json.dumps(data))
    assert "docs/performance.md: pymc_sampling_routes" in docs_tables.stale_tables(bench_dir=bench)


def test_a_hand_edited_table_is_caught_and_rewritten(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# x\n")
    page = (ROOT / "docs/performance.md").read_text()
    table = docs_tables.make_table("em_scale")
    edited = page.replace(table, table.replace("| 2e7 |", "| 3e7 |"))
    assert edited != page
    (tmp_path / "docs/performance.md").write_text(edited)
    assert docs_tables.stale_tables(tmp_path) == ["docs/performance.md: em_scale"]
    assert docs_tables.write_tables(tmp_path) == ["docs/performance.md: em_scale"]
    assert (tmp_path / "docs/performance.md").read_text() == page
    assert docs_tables.stale_tables(tmp_path) == []


def test_an_unknown_table_or_a_missing_json_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("<!-- table: em_vs_sklearn.nope -->\n<!-- /table -->\n")
    (tmp_path / "docs/a.md").write_text("<!-- table: families_speed -->\n<!-- /table -->\n")
    stale = docs_tables.stale_tables(tmp_path, bench_dir=tmp_path)
    assert len(stale) == 2
    assert stale[0].startswith("README.md: \"unknown table 'em_vs_sklearn.nope'")
    assert stale[1].startswith("docs/a.md:") and "results_families_speed.json" in stale[1]


def test_families_speed_ratios():
    # the relative of a family is its storage's family among VII, VVI, EEE, VVV, at the faster of
    # gmm-suite's and scikit-learn's time; mclust's column is mclust over gmm-suite
    rows = [{"model": m, "ours_s": 0.01, "sklearn_s": None, "mclust_s": 0.04}
            for m in docs_tables.RELATIVE]
    by = {r["model"]: r for r in rows}
    by["VVV"].update(ours_s=0.02, sklearn_s=0.016)
    by["EVE"].update(ours_s=0.024, mclust_s=None)
    lines = {line.split(" | ")[0].strip("| "): line.split(" | ")
             for line in docs_tables.families_speed({"rows": rows}).splitlines()[2:]}
    assert lines["EVE"][4:] == ["1.50", "- |"]                 # 0.024 / min(0.02, 0.016)
    assert lines["VVV"][4:] == ["1.25", "2.0x |"]
    assert lines["EII"][4:] == ["1.00", "4.0x |"]


def test_check_mode_exit_status(capsys):
    assert docs_tables.main(["--check"]) == 0
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------------------------
# (b) the README is a front door
# ---------------------------------------------------------------------------------------------
def test_readme_is_at_most_12_kb():
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; move detail to docs/ (limit {README_LIMIT})"


def test_readme_has_the_two_commands():
    block = _section((ROOT / "README.md").read_text(), "Two commands")
    assert re.findall(r"^make (\w+)", block, re.MULTILINE) == ["demo", "test"]


# ---------------------------------------------------------------------------------------------
# (c) the what's-where lists every module, and every relative link resolves
# ---------------------------------------------------------------------------------------------
def _listed_modules():
    table = _section((ROOT / "README.md").read_text(), "What's where")
    return set(re.findall(r"^\| `([\w/]+\.py)` \|", table, re.MULTILINE))


def _modules():
    return {p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def test_whats_where_lists_every_module():
    missing = sorted(_modules() - _listed_modules())
    assert not missing, f"modules without a line in the README's what's-where: {missing}"


def test_whats_where_lists_no_module_that_does_not_exist():
    gone = sorted(_listed_modules() - _modules())
    assert not gone, f"the README's what's-where lists modules that do not exist: {gone}"


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", docs_tables.pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue                                          # a URL, or an anchor on this page
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files: {broken}"
