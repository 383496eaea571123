"""Results folders never lose anything; data loading names what is wrong."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import reports.joint
from models import load_faithful
from reports.cli import main
from reports.interrupt import Interrupted
from reports.io import MANIFEST, NA_CELLS, ResultsFolder, UserError, columns_present, load_data

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT / "tests" / "data" / "csv"
# The table of tests/data/csv/make_files.R, which R wrote into each file there
TABLE = np.array([[5.1, 1.0, 10.0], [-0.25, 2.5, 20.0], [0.001, -3.0, 30.0],
                  [12345.678, 1e-20, 40.0], [3.14159265358979, 7.0, 50.0]])


def gmm(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, pattern):
    lines = err.strip().splitlines()
    assert code == 2 and lines, err
    assert "Traceback" not in err and re.search(pattern, lines[-1]), err
    assert lines[-1].startswith("gmm: error:")


@pytest.fixture
def user_folder(tmp_path):
    """A user's folder holding their notes and the input data."""
    folder = tmp_path / "mine"
    folder.mkdir()
    X, names = load_faithful()
    data = folder / "faithful.csv"
    data.write_text(",".join(names) + "\n" + "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in X) + "\n")
    notes = folder / "notes.txt"
    notes.write_bytes(b"my notes\x00\xff")
    return folder, {p: p.read_bytes() for p in (data, notes)}


def assert_intact(files):
    for path, content in files.items():
        assert path.read_bytes() == content, path


def no_temporary_folders(parent):
    return not [p for p in Path(parent).iterdir() if ".gmm-tmp-" in p.name]


def test_force_never_deletes_a_users_folder(user_folder, capsys):
    folder, files = user_folder
    for extra in ([], ["--force"]):
        code, _, err = gmm(capsys, "fit", folder / "faithful.csv", "-k", "2", "--out", folder,
                           *extra)
        one_line_error(code, err, "holds files gmm did not write")
        assert_intact(files)
        assert sorted(p.name for p in folder.iterdir()) == ["faithful.csv", "notes.txt"]
    assert no_temporary_folders(folder.parent)


def test_out_dot_and_its_parents_are_refused(user_folder, capsys, monkeypatch):
    folder, files = user_folder
    monkeypatch.chdir(folder)
    for out in (".", "..", str(folder)):
        code, _, err = gmm(capsys, "fit", "faithful.csv", "-k", "2", "--out", out, "--force")
        one_line_error(code, err, "current working folder")
    assert_intact(files)


def test_out_naming_a_file_is_refused(user_folder, capsys):
    folder, files = user_folder
    code, _, err = gmm(capsys, "fit", "faithful", "-k", "2", "--out", folder / "notes.txt")
    one_line_error(code, err, "names an existing file")
    assert_intact(files)


def test_force_replaces_only_gmms_own_files(tmp_path, capsys):
    out = tmp_path / "res"
    assert gmm(capsys, "fit", "faithful", "-k", "2", "--out", out)[0] == 0
    assert gmm(capsys, "report", out)[0] == 0
    mine = out / "my.txt"
    mine.write_text("the user's")
    code, _, err = gmm(capsys, "fit", "faithful", "-k", "3", "--out", out)
    one_line_error(code, err, "--force")
    assert xr.open_datatree(out / "em.nc").attrs["n_components"] == 2
    assert gmm(capsys, "fit", "faithful", "-k", "3", "--out", out, "--force")[0] == 0
    assert xr.open_datatree(out / "em.nc").attrs["n_components"] == 3
    assert mine.read_text() == "the user's"
    # the old report described the K = 2 fit: gmm wrote it, so --force removed it
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "em.nc", "my.txt", "run.json"]
    manifest = json.loads((out / MANIFEST).read_text())["files"]
    assert set(manifest) == {"em.nc", "run.json"}
    assert no_temporary_folders(tmp_path)


def test_a_gmm_file_the_user_changed_is_not_replaced(tmp_path, capsys):
    out = tmp_path / "res"
    assert gmm(capsys, "fit", "faithful", "-k", "2", "--out", out)[0] == 0
    (out / "run.json").write_text('{"edited": "by hand"}')
    code, _, err = gmm(capsys, "fit", "faithful", "-k", "2", "--out", out, "--force")
    one_line_error(code, err, "changed since gmm wrote it")
    assert (out / "run.json").read_text() == '{"edited": "by hand"}'
    (out / "run.json").unlink()                 # a folder of the user's where gmm wrote a file
    (out / "run.json").mkdir()
    (out / "run.json" / "mine.txt").write_text("kept")
    code, _, err = gmm(capsys, "fit", "faithful", "-k", "2", "--out", out, "--force")
    one_line_error(code, err, "changed since gmm wrote it")
    assert (out / "run.json" / "mine.txt").read_text() == "kept"


def test_report_replaces_only_its_own_files_and_keeps_a_users_clash(tmp_path, capsys):
    out = tmp_path / "res"
    assert gmm(capsys, "fit", "faithful", "-k", "2", "--out", out)[0] == 0
    assert gmm(capsys, "report", out)[0] == 0
    first = (out / "index.html").read_bytes()
    assert gmm(capsys, "report", out)[0] == 0          # a second report replaces its own files
    assert (out / "index.html").read_bytes() == first
    (out / "index.html").unlink()
    (out / "classification.png").write_bytes(b"a user's picture")
    code, _, err = gmm(capsys, "report", out)
    one_line_error(code, err, "classification.png")
    assert (out / "classification.png").read_bytes() == b"a user's picture"
    assert not (out / "index.html").exists()


def test_second_run_with_another_k_gets_its_own_default_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert gmm(capsys, "fit", "iris", "-k", "2")[0] == 0
    assert gmm(capsys, "fit", "iris", "-k", "3", "--covariance-type", "diag")[0] == 0
    assert sorted(p.name for p in (tmp_path / "reports" / "out").iterdir()) == [
        "fit-iris-K2-full", "fit-iris-K3-diag"]


def test_failed_or_interrupted_run_writes_nothing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "res"
    with pytest.raises(RuntimeError), ResultsFolder(out) as folder:
        (folder.path / "half.nc").write_text("half-written")
        raise RuntimeError("boom")
    assert not out.exists() and no_temporary_folders(tmp_path)

    def interrupted(*args, **kwargs):
        raise Interrupted
    monkeypatch.setattr(reports.joint, "em_to_datatree", interrupted)
    code, out_text, err = gmm(capsys, "fit", "faithful", "-k", "2", "--out", out)
    assert code == 130 and err.strip().splitlines()[-1] == "gmm: interrupted; nothing written"
    assert "Traceback" not in err
    assert not out.exists() and no_temporary_folders(tmp_path)


#: Ctrl-C must end the process within this many seconds, wherever it lands
WITHIN_S = 2.0


def empty_caches(folder):
    """The environment of a fresh machine: every compile cache in a new empty folder."""
    return {"XDG_CACHE_HOME": str(folder / "xdg"), "NUMBA_CACHE_DIR": str(folder / "numba"),
            "PYTENSOR_FLAGS": f"base_compiledir={folder / 'pytensor'}",
            "JAX_COMPILATION_CACHE_DIR": str(folder / "jax")}


def interrupt(argv, started, tmp_path, env=None, after_s=1.5):
    """Run ``argv`` (a ``gmm`` command, or a command line) in a subprocess; SIGINT it ``after_s``
    seconds after ``started(stderr)``; check it ends within :data:`WITHIN_S` with one line and
    exit status 130. Returns its stderr."""
    cmd = argv if argv[0] == sys.executable else [sys.executable, "-m", "reports.entry", *argv]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "MPLBACKEND": "Agg", **(env or {})})
    chunks = []        # raw pieces, not lines: the progress bar rewrites one line with \r
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read(64), "")),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 600
    try:
        while not started("".join(chunks)) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None and started("".join(chunks)), "".join(chunks)[-3000:]
        time.sleep(after_s)
        assert proc.poll() is None, "".join(chunks)[-3000:]
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        took = time.monotonic() - sent
        reader.join(timeout=10)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    stderr = "".join(chunks)
    assert proc.returncode == 130, stderr[-3000:]
    assert took <= WITHIN_S, f"the process ran on for {took:.1f} s after Ctrl-C"
    assert "Traceback" not in stderr and "Error" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].endswith("gmm: interrupted; nothing written")
    return stderr


def progress_moved(stderr):
    return re.search(r"blackjax NUTS[^|]*\|[^|]*\|\s*[1-9]\d*/", stderr) is not None


@pytest.mark.parametrize("when", ["early", "sampling", "compiling, empty caches"])
def test_ctrl_c_during_sample_one_line_exit_130(tmp_path, when):
    out = tmp_path / "res"
    # early: the command is running; sampling: the progress bar has moved; compiling: the model
    # compiles from empty caches (a fresh clone's first run)
    started = {"early": lambda stderr: not no_temporary_folders(tmp_path),
               "sampling": progress_moved,
               "compiling, empty caches": lambda stderr: "compiling the model" in stderr}[when]
    env = empty_caches(tmp_path / "caches") if "empty" in when else None
    interrupt(["sample", "faithful", "-k", "2", "--sampler", "blackjax", "--draws", "100000",
               "--chains", "1", "--out", str(out)], started, tmp_path, env=env,
              after_s=0.5 if env else 1.5)
    assert not out.exists() and no_temporary_folders(tmp_path)


#: a results folder being written while the main thread is where Python cannot raise Ctrl-C
_BLOCKED = """
import sys
from reports import interrupt
from reports.io import ResultsFolder

interrupt.install_handler(watch=True)
try:
    with ResultsFolder(sys.argv[1]) as folder:
        (folder.path / "half.nc").write_text("half-written")
        print("ready".ljust(64), file=sys.stderr, flush=True)  # the reader takes 64 at a time
        if sys.argv[2] == "swallowed":          # a library that catches every exception
            while True:
                try:
                    sum(range(10**5))
                except BaseException:
                    pass
        else:                 # a long compiled JAX program in flight: the interpreter's own
            # shutdown would wait for it to finish (sys.exit here runs on for minutes)
            import jax
            import jax.numpy as jnp

            step = jax.jit(lambda x: jax.lax.fori_loop(
                0, 2**31 - 1, lambda i, v: jnp.sin(v) + 1e-9 * i, x))
            running = step(jnp.ones(4096))      # dispatched: it runs while Python waits below
            print("running".ljust(64), file=sys.stderr, flush=True)
            running.block_until_ready()
except BaseException as exc:
    if interrupt.interrupted(exc):
        interrupt.exit_now(interrupt.report())
    raise
"""


@pytest.mark.parametrize("where", ["swallowed", "in a JAX program"])
def test_ctrl_c_ends_the_process_where_python_cannot_raise_it(tmp_path, where):
    out = tmp_path / "res"
    started = (lambda stderr: "ready" in stderr) if where == "swallowed" else (
        lambda stderr: "running" in stderr)
    interrupt([sys.executable, "-c", _BLOCKED, str(out), where.split()[0]], started, tmp_path,
              after_s=0.5)
    assert not out.exists() and no_temporary_folders(tmp_path)


def test_ctrl_c_during_demo_stops_its_helper_without_a_leak_warning(tmp_path):
    # the chosen model (K = 3) samples 100,000 draws here while the helper process samples
    # K = 4 for the LOO table: the Ctrl-C terminates the helper mid-run, which once left tqdm's
    # process lock for the resource tracker to report as a leaked semaphore
    out = tmp_path / "demo"
    stderr = interrupt(["demo", "--sampler", "blackjax", "--draws", "100000", "--chains", "2",
                        "--out", str(out)],
                       progress_moved, tmp_path)
    assert "leaked" not in stderr and "Warning" not in stderr, stderr[-3000:]
    assert not out.exists() and no_temporary_folders(tmp_path)


def test_load_data_names_missing_cells_and_excludes(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1.0,2.0,x\n3.0,,y\n5.0,6.0,z\n")
    with pytest.raises(UserError, match=r"missing value at row 2, column 'b'"):
        load_data(str(path), exclude=["label"])
    with pytest.raises(UserError, match=r"column 'label' .* not numeric: row 1 holds 'x'.*--exclude"):
        load_data(str(path), columns=["a", "label"])
    path.write_text("a,b,label\n1.0,2.0,x\n3.0,4.5,y\n5.0,6.0,z\n")
    X, names = load_data(str(path), exclude=["label"])
    assert names == ["a", "b"]
    np.testing.assert_array_equal(X, [[1.0, 2.0], [3.0, 4.5], [5.0, 6.0]])
    X, names = load_data("iris", exclude=["sepal width (cm)"])
    assert X.shape == (150, 3) and "sepal width (cm)" not in names
    with pytest.raises(UserError, match="not in"):
        load_data(str(path), exclude=["nope"])


def test_missing_value_through_the_command(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1.0,2.0\n3.0,\n5.0,6.0\n")
    code, _, err = gmm(capsys, "fit", path, "-k", "1", "--no-missing", "--out", tmp_path / "o")
    one_line_error(code, err, r"missing value at row 2, column 'b'")
    path.write_text("a,b\n1.0,2.0\n3.0,\n5.0,6.0\n2.0,5.0\nNA,1.0\n")
    code, _, err = gmm(capsys, "fit", path, "-k", "1", "--out", tmp_path / "o")
    assert code == 0 and "2 cells missing in 2 of 5 rows" in err


# ---------------------------------------------------------------------------------------------
# Data files as R and Excel write them (issue 29), missing cells (issue 30)
# ---------------------------------------------------------------------------------------------
def read(path, **options):
    """load_data's (X, names, notes) for ``path``."""
    notes = []
    X, names = load_data(str(path), say=notes.append, **options)
    return X, names, notes


def refused(path, pattern, **options):
    with pytest.raises(UserError) as info:
        load_data(str(path), say=lambda message: None, **options)
    message = str(info.value)
    assert "\n" not in message and re.search(pattern, message), message
    return message


@pytest.mark.parametrize("name", ["write_csv.csv", "write_csv_rownames.csv"])
def test_r_write_csv_row_names_are_dropped(name):
    X, names, notes = read(CSV / name)
    np.testing.assert_array_equal(X, TABLE)
    assert names == ["a", "b", "c d"]
    assert notes == [f"note: {CSV / name}: first column is R's row names (write.csv); dropped it "
                     "(pass --index-col to choose another)"]


def test_r_write_csv2_is_semicolons_and_decimal_commas():
    X, names, notes = read(CSV / "write_csv2.csv")
    np.testing.assert_array_equal(X, TABLE)
    assert names == ["a", "b", "c d"]
    assert notes == [f"note: {CSV / 'write_csv2.csv'}: read as semicolon-separated with decimal commas",
                     f"note: {CSV / 'write_csv2.csv'}: first column is R's row names (write.csv); "
                     "dropped it (pass --index-col to choose another)"]


def test_r_write_table_spaces_and_tabs():
    X, names, notes = read(CSV / "write_table.txt")        # its header is one name short
    np.testing.assert_array_equal(X, TABLE)
    assert names == ["a", "b", "c d"]
    assert notes == [f"note: {CSV / 'write_table.txt'}: read as whitespace-separated",
                     f"note: {CSV / 'write_table.txt'}: first column is row names (the header is one "
                     "name short, as R's write.table writes); dropped it"]
    X, names, notes = read(CSV / "write_table_tab.tsv")
    np.testing.assert_array_equal(X, TABLE)
    assert names == ["a", "b", "c d"]
    assert notes == [f"note: {CSV / 'write_table_tab.tsv'}: read as tab-separated"]


def test_given_separator_and_index_column_are_obeyed_silently():
    X, names, notes = read(CSV / "write_csv2.csv", sep=";", decimal=",", index_col=0)
    np.testing.assert_array_equal(X, TABLE)
    assert names == ["a", "b", "c d"] and notes == []
    X, names, notes = read(CSV / "write_table_tab.tsv", sep="tab", index_col="a")
    np.testing.assert_array_equal(X, TABLE[:, 1:])
    assert names == ["b", "c d"] and notes == []
    refused(CSV / "write_table_tab.tsv", r"--index-col 'z' is neither .* \['a', 'b', 'c d'\]",
            index_col="z")


def test_excel_european_csv_with_bom_crlf_thousands_and_empty_trailing_cells(tmp_path):
    path = tmp_path / "excel.csv"                       # Excel's "CSV UTF-8" in a German locale
    path.write_bytes("\ufeffGewicht;Länge;;\r\n1.234,5;2,25;;\r\n-0,5;3;;\r\n7;1.000.000;;\r\n"
                     ";;;\r\n;;;\r\n".encode())
    X, names, notes = read(path)
    np.testing.assert_array_equal(X, [[1234.5, 2.25], [-0.5, 3.0], [7.0, 1e6]])
    assert names == ["Gewicht", "Länge"]
    assert notes == [f"note: {path}: read as semicolon-separated with decimal commas and '.' "
                     "separating thousands",
                     f"note: {path}: dropped 2 lines of separators only at the end",
                     f"note: {path}: dropped 2 empty columns (no name, no values)"]
    path.write_bytes("Température;b\r\n1,5;2\r\n3;4,25\r\n".encode("cp1252"))   # "CSV (;)"
    X, names, notes = read(path)
    np.testing.assert_array_equal(X, [[1.5, 2.0], [3.0, 4.25]])
    assert names == ["Température", "b"]
    assert notes == [f"note: {path}: not UTF-8; read it as Windows-1252 text",
                     f"note: {path}: read as semicolon-separated with decimal commas"]
    path.write_bytes("a\tb\r\n1.5\t2\r\n3\t4\r\n".encode("utf-16"))        # "Unicode text"
    X, names, notes = read(path)
    np.testing.assert_array_equal(X, [[1.5, 2.0], [3.0, 4.0]])
    assert notes == [f"note: {path}: read as tab-separated"]


def test_quotes_spaces_bom_and_thousands_in_a_comma_file_read_exactly(tmp_path):
    path = tmp_path / "d.csv"
    rows = np.random.default_rng(29).normal(size=(20, 2)) * [1e-5, 1e8]
    path.write_text("\ufeff a , \"b\" \n" + "".join(f' "{x!r}" , {y!r} \n' for x, y in rows.tolist()))
    X, names, notes = read(path)
    np.testing.assert_array_equal(X, rows)               # float() of each cell: correctly rounded
    assert names == ["a", "b"] and notes == []
    path.write_text('a,b\n"1,234.5",2\n-3,"12,000"\n')
    X, names, notes = read(path)
    np.testing.assert_array_equal(X, [[1234.5, 2.0], [-3.0, 12000.0]])
    assert notes == [f"note: {path}: read with ',' separating thousands"]


def test_headerless_file_is_refused_or_read_with_no_header(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1.5,2\n3,4\n5,6\n")
    refused(path, r"^'.*d.csv': its first line \(1.5, 2\) holds numbers like the lines below it, not "
                  r"column names; pass --no-header if it is data\.$")
    X, names, notes = read(path, header=False)
    np.testing.assert_array_equal(X, [[1.5, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert names == ["x0", "x1"] and notes == []
    path.write_text("5.1,3.5,setosa\n4.9,3.0,setosa\n")           # a text column changes nothing
    refused(path, r"first line \(5.1, 3.5, setosa\) holds numbers.*--no-header")
    X, names, _ = read(path, header=False, exclude=["x2"])
    np.testing.assert_array_equal(X, [[5.1, 3.5], [4.9, 3.0]])
    path.write_text("a,b\n1.5,2\n3,4\n")
    refused(path, r"column 'x0' .* row 1 holds 'a'; its first row looks like column names: leave "
                  "out --no-header", header=False)
    path.write_text("x,2020\n1.5,2\n3,4\n")                        # a number may name a column
    assert read(path)[1] == ["x", "2020"]


def test_values_needing_decimal_or_sep_are_refused_until_given(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a;b\n1,234;2\n3;4\n")                          # 1.234 or 1234?
    refused(path, r"'1,234' in column 'a' could be 1.234 or 1234; pass --decimal ',' if commas mark "
                  r"decimals, or --decimal '.' if they separate thousands\.")
    np.testing.assert_array_equal(read(path, decimal=",")[0], [[1.234, 2.0], [3.0, 4.0]])
    X, _, notes = read(path, decimal=".")
    np.testing.assert_array_equal(X, [[1234.0, 2.0], [3.0, 4.0]])
    assert notes == [f"note: {path}: read as semicolon-separated with ',' separating thousands"]
    path.write_text("a;b\n1,5;2.5\n3;4\n")
    refused(path, r"column 'a' holds '1,5' but column 'b' holds '2.5': numbers written with "
                  "different decimal marks; pass --decimal to choose one.")
    refused(path, r"column 'b' .* row 1 holds '2.5'; pass --decimal '.' if '.' is its decimal mark",
            decimal=",")
    path.write_text("x\n1,5\n2,25\n")                             # one column, or two?
    refused(path, r"cannot tell whether ',' separates the columns .* pass --decimal ',' or --sep ','")
    np.testing.assert_array_equal(read(path, decimal=",")[0], [[1.5], [2.25]])
    X, names, notes = read(path, sep=",")
    np.testing.assert_array_equal(X, [[5.0], [25.0]])
    assert names == ["x"] and "row names" in notes[0]
    path.write_text("a:b\n1.5:2\n3:4\n")
    refused(path, r"column 'a:b' .* row 1 holds '1.5:2'; pass --sep ':' if ':' separates its columns")
    np.testing.assert_array_equal(read(path, sep=":")[0], [[1.5, 2.0], [3.0, 4.0]])


def test_ragged_unnamed_and_duplicate_columns_are_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1.5,2\n3\n5,6\n")
    refused(path, r"line 3 has 1 field where line 2 has 2 \(read as comma-separated\); fix that line "
                  "or pass --sep")
    path.write_text("a,b\n1.5,2\n" * 1 + "3,4\n" * 2000 + "5,6,7\n")  # past the lines sniffed
    refused(path, r"line 2003 has 3 fields where line 2 has 2 \(read as comma-separated\)")
    path.write_text(",a,b\n0.5,1.5,2\n1.5,3,4\n")                   # not row names: a feature
    refused(path, r"column 0 of .* has no name in its header; name it, or pass --index-col 0 if it "
                  "holds row labels")
    path.write_text("a,b,a\n1.5,2,3\n3,4,5\n")
    refused(path, r"columns 0 and 2 of .* are both named 'a'; rename one")
    path.write_text(",a,b\n0,1.5,2\n1,3,4\n")                        # pandas' to_csv index
    X, names, notes = read(path)
    np.testing.assert_array_equal(X, [[1.5, 2.0], [3.0, 4.0]])
    assert "row names" in notes[0]
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00")                   # an .xlsx
    refused(path, r"is not a text file .*save as CSV")


def test_na_cells_are_missing_values_by_policy():
    path = CSV / "write_csv_na.csv"
    expect = TABLE.copy()
    expect[1, 1] = np.nan
    refused(path, r"^missing value at row 2, column 'b' of .* \(1 missing in that column\); pass "
                  r"--complete-rows to drop incomplete rows\.$")
    X, names, notes = read(path, missing="allow")
    np.testing.assert_array_equal(X, expect)                    # NaN where R wrote NA
    assert notes[-1] == f"note: {path}: 1 cell missing in 1 of 5 rows"
    X, names, notes = read(path, missing="drop")
    np.testing.assert_array_equal(X, TABLE[[0, 2, 3, 4]])
    assert notes[-1] == f"note: {path}: dropped 1 row of 5 with missing values"
    with pytest.raises(ValueError, match="missing='keep'; choose one of refuse, drop, allow"):
        load_data(str(path), missing="keep")


def test_every_pandas_missing_token_is_missing(tmp_path):
    path = tmp_path / "d.csv"
    tokens = sorted(NA_CELLS - {""})
    assert pd.read_csv(io.StringIO("a\n" + "\n".join(tokens)), dtype=str)["a"].isna().all()
    path.write_text("a,b\n" + "".join(f"{i},{t}\n" for i, t in enumerate(tokens)) + "7,\n8,9\n")
    X, _, notes = read(path, missing="allow")
    assert np.isnan(X[:-1, 1]).all() and X[-1, 1] == 9.0
    assert notes == [f"note: {path}: {len(tokens) + 1} cells missing in {len(tokens) + 1} of "
                     f"{len(tokens) + 2} rows"]


def test_rows_or_columns_with_nothing_observed_are_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,c\n1.5,NA,3\nNA,NA,NA\n3,4,5\n,,\n6,7,8\n")
    refused(path, r"^row 2 of .* has no observed value \(2 such rows\); delete it or pass "
                  r"--complete-rows to drop incomplete rows\.$", missing="allow")
    X, _, notes = read(path, missing="drop")
    np.testing.assert_array_equal(X, [[3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    assert notes == [f"note: {path}: dropped 3 rows of 5 with missing values"]
    path.write_text("a,b,c\n1.5,NA,3\n2,NA,4\n3,,5\n")
    for missing in ("allow", "drop", "refuse"):
        refused(path, r"^column 'b' of .* has no observed value; leave it out with --exclude 'b'\.$",
                missing=missing)
    np.testing.assert_array_equal(read(path, exclude=["b"])[0], [[1.5, 3], [2, 4], [3, 5]])


def test_infinite_values_are_refused_naming_row_and_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('"","a","b"\n"1",1.5,2\n"2",3,-Inf\n')            # R writes Inf as Inf
    for missing in ("refuse", "drop", "allow"):
        refused(path, r"hold -inf at row 2, column 'b'; drop or fix that row", missing=missing)


def test_columns_present_reads_the_header_the_same_way(tmp_path):
    assert columns_present(str(CSV / "write_csv2.csv"), ["c d", "a"]) == ["c d", "a"]
    assert columns_present(str(CSV / "write_table_tab.tsv"), ["b"]) == ["b"]
    assert columns_present(str(CSV / "write_csv2.csv"), ["z"]) is None
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffx;y\r\n1,5;2\r\n".encode())
    assert columns_present(str(path), ["x", "y"]) == ["x", "y"]


def test_a_file_r_writes_reads_as_r_reads_it():
    # R wrote 200 x 3 random numbers with write.csv2, and the doubles its read.csv2 reads back
    # from that file, in hex (tests/data/csv/make_files.R)
    hexes = (CSV / "write_csv2_200_doubles.txt").read_text().split()
    reference = np.array([np.nan if h == "NA" else float.fromhex(h) for h in hexes]).reshape(3, 200).T
    assert np.isnan(reference).sum() == 2
    X, names, notes = read(CSV / "write_csv2_200.csv", missing="allow")
    np.testing.assert_array_equal(X, reference)
    assert names == ["u", "v", "w"] and len(notes) == 3
