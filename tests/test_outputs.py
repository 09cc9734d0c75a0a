"""Where xnorflow writes: atomic files, owned folders, refusals that leave everything as it was."""

import json
import subprocess
import sys
import textwrap

import pytest

from xnorflow.errors import OutputConflict
from xnorflow.outputs import (
    LOCK,
    MARKER,
    PREVIOUS,
    atomic_file,
    check_folder,
    claim_file,
    claim_folder,
    holding,
    owned_folder,
    write_text,
)


def test_atomic_file_leaves_the_old_file_on_ctrl_c(tmp_path):
    path = tmp_path / "summary.json"
    write_text(path, "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(path, "w") as f:
            f.write("half of the new")
            raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_atomic_file_has_the_usual_permissions(tmp_path):
    write_text(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    assert (tmp_path / "a.txt").stat().st_mode == (tmp_path / "b.txt").stat().st_mode


def test_a_new_or_empty_folder_becomes_xnorflows(tmp_path):
    folder = claim_folder(tmp_path / "new", "run")
    assert owned_folder(tmp_path / "new").kind == "run"
    (tmp_path / "empty").mkdir()
    claim_folder(tmp_path / "empty", "build")
    assert json.loads((tmp_path / "empty" / MARKER).read_text())["xnorflow"] == "build"
    assert folder.entries() == {}


@pytest.mark.parametrize("exclusive", [False, True])
def test_a_foreign_folder_is_refused_and_untouched(tmp_path, exclusive):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(OutputConflict, match=r"already holds files xnorflow did not write "
                                             r"\(notes.txt\)"):
        claim_folder(tmp_path / "mine", "build", exclusive)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputConflict, match="is a file, not a folder"):
        check_folder(tmp_path / "file", "run")


def test_another_kind_and_foreign_entries_are_refused(tmp_path):
    build = claim_folder(tmp_path / "b", "build", exclusive=True)
    with pytest.raises(OutputConflict, match="is an xnorflow build folder, not a run folder"):
        claim_folder(tmp_path / "b", "run")
    with build.rewriting("build", created=False):
        (build.path / "report").mkdir()
    assert build.entries() == {"report": "build"}
    claim_folder(tmp_path / "b", "build", exclusive=True)  # only its own entries: fine
    (build.path / "user.txt").write_text("added by the user")
    with pytest.raises(OutputConflict, match=r"holds files xnorflow did not write \(user.txt\)"):
        claim_folder(tmp_path / "b", "build", exclusive=True)


def test_remove_own_deletes_only_recorded_entries(tmp_path):
    folder = claim_folder(tmp_path / "hls", "hls")
    write_text(folder.target("bmlp_top.cpp", "hls"), "generated")
    (folder.path / "notes.txt").write_text("the user's")
    folder.remove_own()
    assert sorted(p.name for p in folder.path.iterdir()) == [MARKER, LOCK, "notes.txt"]


def test_entries_are_replaced_only_by_the_stage_that_wrote_them(tmp_path):
    run = claim_folder(tmp_path / "run", "run")
    write_text(run.target("model.pt", "train"), "model")
    with pytest.raises(OutputConflict, match=r"written by `xnorflow train`; `xnorflow export` "
                                             r"will not replace it"):
        claim_file(run.path / "model.pt", "export")
    (run.path / "notes.onnx").write_text("the user's")
    with pytest.raises(OutputConflict, match="was not written by xnorflow"):
        claim_file(run.path / "notes.onnx", "export")
    path = claim_file(run.path / "model.qonnx.onnx", "export")
    write_text(path, "graph")
    assert claim_file(path, "export") == path  # its own, written before: may be replaced
    assert run.entries()["model.qonnx.onnx"] == "export"


def test_an_output_that_is_an_input_is_refused(tmp_path):
    source = tmp_path / "model.pt"
    source.write_text("trained")
    with pytest.raises(OutputConflict, match="is an input of `xnorflow export`"):
        claim_file(tmp_path / "." / "model.pt", "export", inputs=(source,))
    outside = tmp_path / "theirs.onnx"
    outside.write_text("x")
    with pytest.raises(OutputConflict, match="exists and was not written by xnorflow"):
        claim_file(outside, "export")
    assert claim_file(tmp_path / "new.onnx", "export") == tmp_path / "new.onnx"
    assert source.read_text() == "trained" and outside.read_text() == "x"


def test_a_killed_rewrite_is_taken_back_by_the_next_run(tmp_path):
    """A kill (SIGKILL, power loss) skips every clean-up; the marker still says the folder was
    being rewritten, so what is there is xnorflow's and the next run replaces it."""
    build = claim_folder(tmp_path / "b", "build", exclusive=True)
    with build.rewriting("build", created=False):
        (build.path / "old_report").write_text("earlier build")
    build._save({}, busy="build")  # as a run killed inside its block leaves the marker
    (build.path / "half_written").write_text("partial")
    again = claim_folder(tmp_path / "b", "build", exclusive=True)
    with again.rewriting("build", created=False):
        assert sorted(p.name for p in again.path.iterdir()) == [MARKER, LOCK]
        (again.path / "report").mkdir()
    assert again.entries() == {"report": "build"} and again.busy() is None


def test_ctrl_c_in_a_rewrite_removes_what_it_wrote(tmp_path):
    folder = claim_folder(tmp_path / "new", "build", exclusive=True)
    with pytest.raises(KeyboardInterrupt):
        with folder.rewriting("build", created=True):
            (folder.path / "codegen").mkdir()
            raise KeyboardInterrupt
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------ one command per folder
HOLDER = textwrap.dedent("""
    import sys, time
    from xnorflow.outputs import claim_folder
    claim_folder(sys.argv[1], sys.argv[2])
    print("held", flush=True)
    time.sleep(60)
""")


def _hold_in_another_process(path, kind):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), kind],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_folder_held_by_a_live_command_is_refused_and_freed_by_its_kill(tmp_path):
    holder = _hold_in_another_process(tmp_path / "b", "build")
    try:
        for claim in (lambda: claim_folder(tmp_path / "b", "build", exclusive=True),
                      lambda: check_folder(tmp_path / "b", "build", exclusive=True)):
            with pytest.raises(OutputConflict, match=rf"in use by another xnorflow command "
                                                     rf"\(pid {holder.pid}, writing this build"):
                claim()
    finally:
        holder.kill()
        holder.wait()
    with holding():  # the killed owner is gone: the folder may be taken back
        assert claim_folder(tmp_path / "b", "build", exclusive=True).kind == "build"


def test_a_file_in_a_held_folder_is_refused(tmp_path):
    holder = _hold_in_another_process(tmp_path / "run", "run")
    try:
        with pytest.raises(OutputConflict, match="in use by another xnorflow command"):
            claim_file(tmp_path / "run" / "model.qonnx.onnx", "export")
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "run" / "model.qonnx.onnx").exists()


def _earlier_build(path):
    build = claim_folder(path, "build", exclusive=True)
    with build.rewriting("build", created=False):
        (build.path / "report").mkdir()
        (build.path / "report" / "summary.json").write_text("the earlier build")
        (build.path / "build_dataflow.log").write_text("earlier log")
    return build


def test_a_failed_rebuild_puts_the_earlier_build_back_and_keeps_its_log(tmp_path):
    build = _earlier_build(tmp_path / "b")
    log = (tmp_path / "b").resolve() / "build_dataflow.log"
    with pytest.raises(ValueError) as caught:
        with build.rewriting("build", created=False, failure_logs=("build_dataflow.log",)):
            (build.path / "codegen").mkdir()
            (build.path / "build_dataflow.log").write_text("PE=3 does not divide 64")
            raise ValueError(f"FINN step failed. Full log: {log}")
    assert (build.path / "report" / "summary.json").read_text() == "the earlier build"
    assert (build.path / "build_dataflow.log").read_text() == "earlier log"
    assert (build.path / "build_dataflow.failed.log").read_text() == "PE=3 does not divide 64"
    assert not (build.path / "codegen").exists() and not (build.path / PREVIOUS).exists()
    assert "build_dataflow.failed.log" in str(caught.value)
    assert "The earlier build in" in str(caught.value)
    assert build.entries() == {"report": "build", "build_dataflow.log": "build",
                               "build_dataflow.failed.log": "build"}
    assert build.busy() is None


def test_ctrl_c_in_a_rebuild_puts_the_earlier_build_back(tmp_path):
    build = _earlier_build(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        with build.rewriting("build", created=False, failure_logs=("build_dataflow.log",)):
            assert not (build.path / "report").exists()  # moved aside while building
            (build.path / "build_dataflow.log").write_text("half")
            raise KeyboardInterrupt
    assert (build.path / "report" / "summary.json").read_text() == "the earlier build"
    assert (build.path / "build_dataflow.log").read_text() == "earlier log"
    assert sorted(p.name for p in build.path.iterdir()) == [MARKER, LOCK, "build_dataflow.log",
                                                           "report"]


def test_a_rebuild_killed_half_way_gives_the_earlier_build_back_to_the_next_run(tmp_path):
    """SIGKILL skips every clean-up: the earlier build lies aside, the marker says busy."""
    with holding():
        _earlier_build(tmp_path / "b")
    killer = textwrap.dedent("""
        import os, sys
        from xnorflow.outputs import claim_folder
        build = claim_folder(sys.argv[1], "build", exclusive=True)
        with build.rewriting("build", created=False):
            open(os.path.join(sys.argv[1], "half_written"), "w").write("partial")
            os.kill(os.getpid(), 9)
    """)
    assert subprocess.run([sys.executable, "-c", killer, str(tmp_path / "b")]).returncode == -9
    assert (tmp_path / "b" / PREVIOUS / "report").is_dir()
    with holding():
        again = claim_folder(tmp_path / "b", "build", exclusive=True)
        with pytest.raises(RuntimeError):
            with again.rewriting("build", created=False):
                raise RuntimeError("this one fails too")
    assert (tmp_path / "b" / "report" / "summary.json").read_text() == "the earlier build"
    assert not (tmp_path / "b" / "half_written").exists()
