"""Where xnorflow writes, and the rules that keep it from losing anything of the user's.

- Every file is written atomically: a temporary file in the same folder, fsync, rename. A crash
  or Ctrl-C leaves the old file or the new one, never half of one.
- A folder xnorflow makes (a run, a build, an HLS design) carries a marker file, ``.xnorflow.json``,
  that names its kind and every entry xnorflow wrote there, with the stage that wrote it.
- xnorflow writes into a folder only if the folder is new, empty, or marked as its own of the
  same kind, and replaces only entries that the same stage wrote before. Everything else is
  refused with :class:`~xnorflow.errors.OutputConflict` before any work starts.
- An output is never one of the command's inputs (``export RUN --out RUN/model.pt``).
- A folder is written by one command at a time: the command that claims it holds an OS lock
  (``flock`` on ``.xnorflow.lock``) for its whole life, so a second command is refused while
  the first runs, and a killed command releases it (only then may its folder be taken back).
- A rebuild moves the earlier contents aside and puts them back if it fails or is
  interrupted: the earlier good build stays whole until a new one is complete.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from .errors import OutputConflict

MARKER = ".xnorflow.json"
LOCK = ".xnorflow.lock"         # flock'ed by the command writing the folder; names its pid
PREVIOUS = ".xnorflow-previous"  # a rebuild's earlier contents, until the rebuild is complete
HIDDEN = (MARKER, LOCK, PREVIOUS)


def _file_mode() -> int:
    """What a plain open() would give a new file under the process umask (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# --------------------------------------------------------------------------- atomic files
@contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically, on any
    exception (Ctrl-C included) it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a tool that writes a file by name (a compiler's
    ``-o``, a program's output file): once the block succeeds it replaces ``path`` atomically;
    on any exception it is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_file(path, "w") as f:
        f.write(text)


def write_npy(path: str | Path, array) -> None:
    """A NumPy array as an .npy file, atomically."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    write_bytes(path, buffer.getvalue())


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_file(path, "wb") as f:
        f.write(data)


def cache_root() -> Path:
    """Where xnorflow keeps what it can make again (compiled layers, fetched dependencies):
    $XNORFLOW_CACHE_DIR, else $XDG_CACHE_HOME/xnorflow, else ~/.cache/xnorflow."""
    if os.environ.get("XNORFLOW_CACHE_DIR"):
        return Path(os.environ["XNORFLOW_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "xnorflow"


# --------------------------------------------------------------------------- owned folders
def _visible_entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name not in HIDDEN)


# --------------------------------------------------------------------------- folder locks
_HELD: dict[Path, int] = {}  # folder -> the open, flock'ed lock file of this process


def _holder(lock: Path) -> str:
    try:
        info = json.loads(lock.read_text())
        return f"pid {info['pid']}, writing this {info['kind']} folder since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _in_use(path: Path) -> OutputConflict:
    return OutputConflict(f"{path} is in use by another xnorflow command ({_holder(path / LOCK)}); "
                          f"two commands writing one folder would mix their outputs. Wait for "
                          f"it to finish, or choose another output folder.")


def lock_folder(path: str | Path, kind: str) -> None:
    """Hold this folder for the rest of the command (released by :func:`release_folders` or
    when the process ends, also by a kill). Re-entrant within one process."""
    path = Path(path).resolve()
    if path in _HELD:
        return
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, _file_mode())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _in_use(path) from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "kind": kind,
                             "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
    _HELD[path] = fd


def check_not_in_use(path: str | Path) -> None:
    """Refuse now, before any work, a folder another live command holds."""
    path = Path(path).resolve()
    if path in _HELD or not (path / LOCK).is_file():
        return
    fd = os.open(path / LOCK, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _in_use(path) from None
    finally:
        os.close(fd)  # closing drops the probe's lock


def release_folders(keep: set[Path] = frozenset()) -> None:
    """Let other commands write the folders this process holds (but ``keep``)."""
    for path in [p for p in _HELD if p not in keep]:
        _release(path)


def _release(path: Path) -> None:
    fd = _HELD.pop(path, None)
    if fd is not None:
        os.close(fd)


def holds_folders(stage):
    """Decorator: the stage function holds the folders it claims until it returns."""
    @functools.wraps(stage)
    def held(*args, **kwargs):
        with holding():
            return stage(*args, **kwargs)
    return held


@contextmanager
def holding() -> Iterator[None]:
    """The folders claimed inside the block are held until it ends (a stage called from
    Python, a notebook or a test holds its folders only while it runs)."""
    before = set(_HELD)
    try:
        yield
    finally:
        release_folders(keep=before)


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass
class OwnedFolder:
    """A folder xnorflow made; its marker lists what xnorflow wrote there."""

    path: Path
    kind: str

    def _marker(self) -> dict:
        return json.loads((self.path / MARKER).read_text())

    def entries(self) -> dict[str, str]:
        """Entry name -> the stage that wrote it."""
        return dict(self._marker().get("entries", {}))

    def busy(self) -> str | None:
        """The stage writing into this folder right now, or one that was killed while doing so."""
        return self._marker().get("busy")

    def _save(self, entries: dict[str, str], busy: str | None = None) -> None:
        marker = {"xnorflow": self.kind, "entries": entries, **({"busy": busy} if busy else {})}
        write_text(self.path / MARKER, json.dumps(marker, indent=1, sort_keys=True))

    def record(self, *names: str, stage: str) -> None:
        entries = self.entries()
        entries.update({name: stage for name in names})
        self._save(entries, self.busy())

    def check_targets(self, *names: str, stage: str) -> None:
        """Refuse now, before any work, the entries ``names`` that ``stage`` could not write
        later: something is there that this stage did not write (the user's file, or another
        stage's output)."""
        entries = self.entries()
        for name in names:
            path = self.path / name
            owner = entries.get(name)
            if (path.exists() or path.is_symlink()) and owner != stage:
                what = f"written by `xnorflow {owner}`" if owner else "not written by xnorflow"
                raise OutputConflict(f"{path} exists and was {what}; `xnorflow {stage}` will "
                                     f"not replace it. Move it away or choose another output "
                                     f"path.")

    def target(self, name: str, stage: str) -> Path:
        """The path to write entry ``name`` for ``stage`` (refused as by
        :meth:`check_targets`)."""
        self.check_targets(name, stage=stage)
        self.record(name, stage=stage)
        return self.path / name

    def remove_own(self) -> None:
        """Delete every entry xnorflow recorded here (before rebuilding the folder)."""
        for name in self.entries():
            victim = self.path / name
            if victim.is_dir() and not victim.is_symlink():
                shutil.rmtree(victim)
            else:
                victim.unlink(missing_ok=True)
        self._save({}, self.busy())

    def unrecorded(self) -> list[str]:
        recorded = self.entries()
        return [name for name in _visible_entries(self.path) if name not in recorded]

    def _put_back(self, stage: str, keep: dict[str, str] | None = None) -> None:
        """Remove what a rebuild wrote and put back the contents it moved aside; ``keep``: files
        of the rebuild (name -> new name) kept beside them."""
        previous = self.path / PREVIOUS
        if keep:
            previous.mkdir(exist_ok=True)
            for name, new_name in keep.items():
                os.replace(self.path / name, previous / f".attempt-{new_name}")
        self.remove_own()
        restored = {}
        if (previous / MARKER).is_file():
            restored = json.loads((previous / MARKER).read_text()).get("entries", {})
            for name in restored:
                if (previous / name).exists() or (previous / name).is_symlink():
                    os.replace(previous / name, self.path / name)
        for new_name in (keep or {}).values():
            os.replace(previous / f".attempt-{new_name}", self.path / new_name)
            restored[new_name] = stage
        shutil.rmtree(previous, ignore_errors=True)
        self._save(restored)

    @contextmanager
    def rewriting(self, stage: str, created: bool,
                  failure_logs: tuple[str, ...] = ()) -> Iterator[OwnedFolder]:
        """Replace this exclusive folder's contents with what ``stage`` writes in the block (a
        tool such as FINN's builder, whose file names xnorflow cannot list in advance).

        The earlier contents are moved aside (``.xnorflow-previous``) and deleted only when the
        block succeeds; if it fails or is interrupted they are put back whole. The marker says
        the folder is busy while the block runs: everything that appears is then xnorflow's,
        also after a kill that skipped every clean-up, and the next run (which holds the
        folder's lock, so the killed one is gone) removes it and puts back what was moved
        aside. A failure without earlier contents keeps what the block wrote (a failed build's
        log); with them, it keeps this attempt's ``failure_logs`` beside them as ``*.failed*``
        and says so in the error. On Ctrl-C what the block wrote is removed (and the folder
        too, if ``created`` by this run)."""
        if self.busy():  # an earlier run was killed half-way: what it left is xnorflow's
            self.record(*self.unrecorded(), stage=self.busy())
            self._put_back(self.busy())
        moved = self.entries()
        previous = self.path / PREVIOUS
        if moved:
            previous.mkdir()
            write_text(previous / MARKER, json.dumps({"xnorflow": self.kind, "entries": moved}))
            for name in moved:
                if (self.path / name).exists() or (self.path / name).is_symlink():
                    os.replace(self.path / name, previous / name)
        self._save({}, busy=stage)
        try:
            yield self
        except BaseException as err:
            self._save({name: stage for name in _visible_entries(self.path)}, busy=stage)
            if isinstance(err, KeyboardInterrupt) or moved:
                logs = {} if isinstance(err, KeyboardInterrupt) else {
                    n: f"{Path(n).stem}.failed{Path(n).suffix}" for n in failure_logs
                    if (self.path / n).is_file()}
                self._put_back(stage, logs)
                if moved and not isinstance(err, KeyboardInterrupt):
                    _note_kept(err, self, logs)
            else:
                self._save(self.entries())
            if created and not _visible_entries(self.path):
                self.abandon()
            raise
        shutil.rmtree(previous, ignore_errors=True)
        self._save({**self.entries(), **{n: stage for n in self.unrecorded()}})

    def abandon(self) -> None:
        """Remove this folder, empty but for xnorflow's own files (a run that wrote nothing)."""
        if _visible_entries(self.path):
            return
        for name in HIDDEN:
            victim = self.path / name
            shutil.rmtree(victim) if victim.is_dir() else victim.unlink(missing_ok=True)
        _release(self.path.resolve())
        self.path.rmdir()


def _note_kept(err: BaseException, folder: OwnedFolder, logs: dict[str, str]) -> None:
    """Tell, in the error the user sees, that the earlier contents are kept and where this
    attempt's logs went."""
    if not (isinstance(err, Exception) and err.args and isinstance(err.args[0], str)):
        return
    text = err.args[0]
    for name, failed in logs.items():
        text = text.replace(str(folder.path.resolve() / name), str(folder.path / failed))
    err.args = (f"{text}\nThe earlier {folder.kind} in {folder.path} is kept as it was"
                + (f"; this attempt's log: {', '.join(str(folder.path / f) for f in logs.values())}"
                   if logs else "") + ".", *err.args[1:])


def owned_folder(path: str | Path) -> OwnedFolder | None:
    """The marked folder at ``path``, or None if xnorflow did not make it."""
    path = Path(path)
    marker = path / MARKER
    if not marker.is_file():
        return None
    try:
        kind = json.loads(marker.read_text())["xnorflow"]
    except (ValueError, KeyError, TypeError):
        raise OutputConflict(f"{marker} is damaged; xnorflow cannot tell what it wrote in "
                             f"{path}. Choose another output folder.") from None
    return OwnedFolder(path, kind)


def check_folder(path: str | Path, kind: str, exclusive: bool = False) -> OwnedFolder | None:
    """Whether xnorflow may write a folder of ``kind`` at ``path`` (raises if not): returns the
    marked folder to take back, or None for a new or empty one.

    Refused: a file at ``path``; a non-empty folder without the marker; a marked folder of
    another kind; with ``exclusive`` (for tools that write names xnorflow cannot list in
    advance, such as FINN's builder), a marked folder that also holds entries xnorflow did not
    record (unless its marker says an xnorflow run was writing there when it was killed)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputConflict(f"{path} is a file, not a folder; choose a folder for the output.")
    if not path.is_dir():
        return None
    check_not_in_use(path)
    folder = owned_folder(path)
    if folder is None:
        present = _visible_entries(path)
        if present:
            raise OutputConflict(
                f"{path} already holds files xnorflow did not write ({_listing(present)}); "
                f"xnorflow only writes into a new or empty folder or one it made. Choose "
                f"another output folder.")
        return None
    if folder.kind != kind:
        raise OutputConflict(f"{path} is an xnorflow {folder.kind} folder, not a {kind} "
                             f"folder; choose another output folder.")
    if exclusive and folder.unrecorded() and not folder.busy():
        raise OutputConflict(f"{path} holds files xnorflow did not write "
                             f"({_listing(folder.unrecorded())}); a {kind} would overwrite "
                             f"them. Move them away or choose another output folder.")
    return folder


def claim_folder(path: str | Path, kind: str, exclusive: bool = False) -> OwnedFolder:
    """Make ``path`` an xnorflow folder of ``kind``, or take back one made before (see
    :func:`check_folder` for what is refused)."""
    check_folder(path, kind, exclusive)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    lock_folder(path, kind)
    folder = check_folder(path, kind, exclusive)  # again: it may have changed before the lock
    if folder is not None:
        return folder
    folder = OwnedFolder(path, kind)
    folder._save({})
    return folder


def claim_file(path: str | Path, stage: str, inputs: tuple[Path, ...] = ()) -> Path:
    """Check that ``stage`` may write the single file ``path``: not one of ``inputs``, and, if
    it exists, written by the same stage into a folder xnorflow made. Records the entry if the
    folder is xnorflow's."""
    path = Path(path)
    for source in inputs:
        if source.exists() and path.exists() and path.resolve() == Path(source).resolve():
            raise OutputConflict(f"{path} is an input of `xnorflow {stage}`; writing the output "
                                 f"there would destroy it. Choose another output path.")
    if path.is_dir():
        raise OutputConflict(f"{path} is a folder; give a file name for the output.")
    folder = owned_folder(path.parent) if path.parent.is_dir() else None
    if folder is not None:
        lock_folder(folder.path, folder.kind)
        return folder.target(path.name, stage)
    if path.exists() or path.is_symlink():
        raise OutputConflict(f"{path} exists and was not written by xnorflow; `xnorflow {stage}` "
                             f"will not replace it. Move it away or choose another output path.")
    return path
