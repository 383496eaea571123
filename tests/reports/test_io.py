"""Results folders never lose anything; data loading names what is wrong."""

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
import pytest
import xarray as xr

import reports.joint
from models import load_faithful
from reports.cli import main
from reports.interrupt import Interrupted
from reports.io import MANIFEST, ResultsFolder, UserError, load_data

ROOT = Path(__file__).resolve().parents[2]


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


def interrupt(argv, started, tmp_path):
    """Run ``gmm argv`` in a subprocess, SIGINT it 1.5 s after ``started(stderr)``; its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "reports.entry", *argv],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "MPLBACKEND": "Agg"})
    chunks = []        # raw pieces, not lines: the progress bar rewrites one line with \r
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read(64), "")),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 600
    try:
        while not started("".join(chunks)) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None and started("".join(chunks)), "".join(chunks)[-3000:]
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        reader.join(timeout=10)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    stderr = "".join(chunks)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "Error" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].endswith("gmm: interrupted; nothing written")
    return stderr


def progress_moved(stderr):
    return re.search(r"blackjax NUTS[^|]*\|[^|]*\|\s*[1-9]\d*/", stderr) is not None


@pytest.mark.parametrize("when", ["early", "sampling"])
def test_ctrl_c_during_sample_one_line_exit_130(tmp_path, when):
    out = tmp_path / "res"
    # early: the command is running; sampling: the progress bar has moved
    started = ((lambda stderr: not no_temporary_folders(tmp_path)) if when == "early"
               else progress_moved)
    interrupt(["sample", "faithful", "-k", "2", "--draws", "100000", "--chains", "1", "--out",
               str(out)], started, tmp_path)
    assert not out.exists() and no_temporary_folders(tmp_path)


def test_ctrl_c_during_demo_stops_its_helper_without_a_leak_warning(tmp_path):
    # the chosen model (K = 3) samples 100,000 draws here while the helper process samples
    # K = 4 for the LOO table: the Ctrl-C terminates the helper mid-run, which once left tqdm's
    # process lock for the resource tracker to report as a leaked semaphore
    out = tmp_path / "demo"
    stderr = interrupt(["demo", "--draws", "100000", "--chains", "2", "--out", str(out)],
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
    code, _, err = gmm(capsys, "fit", path, "-k", "1", "--out", tmp_path / "o")
    one_line_error(code, err, r"missing value at row 2, column 'b'")
