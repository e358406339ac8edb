"""Training states in an Optuna artifact store: the one persistence path of the tuner.

Every state is a snapshot from :func:`optuna_gamma.tuner.trainer.capture` written with
:func:`torch.save`. What the tuner keeps (a run's initial state, the adopted states, and every
trial's state with ``keep_trial_states``) is uploaded with
:func:`optuna.artifacts.upload_artifact`, attached to its trial or study, so optuna-dashboard
lists it and every link it shows downloads. A trial's state that may be deleted after the
adoption is written into the store *without* being attached (:meth:`StateStore.save` with
``attach=False``: :meth:`ArtifactStore.write` under a fresh UUID, recorded only in the trial's
``state`` user attribute), so the dashboard never lists a state that no longer exists; the
adoption attaches a copy of the adopted one to its study (:meth:`StateStore.keep`).

The studies refer to a state only by its artifact id, a UUID: :func:`check_artifact_id` refuses
anything else, so a reference read from a storage can never name a path outside the store (the
store itself, :class:`optuna.artifacts.FileSystemArtifactStore`, refuses absolute and escaping
ids too).

A state is read with ``torch.load(weights_only=True)`` (tensors and plain containers only, no
code execution) and checked before use: :meth:`StateStore.load` raises
:class:`StateUnavailableError` for a missing, truncated or foreign file, and the engine then
recomputes the state from its epoch's start state and the trial's parameters (deterministic on
a CPU) instead of failing the run.
"""

from __future__ import annotations

from collections.abc import Collection
import hashlib
import io
import os
from pathlib import Path
import re
import tempfile
from typing import Any
from typing import TYPE_CHECKING
import uuid

from optuna.artifacts import Boto3ArtifactStore
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts import get_all_artifact_meta
from optuna.artifacts import upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

from optuna_gamma.tuner.errors import TunerError


if TYPE_CHECKING:
    import optuna
    from optuna.artifacts._protocol import ArtifactStore


__all__ = [
    "STORE_MARKER",
    "StateStore",
    "StateUnavailableError",
    "check_artifact_id",
    "open_artifact_store",
    "reach_artifact_store",
]

_FORMAT = "optuna-gamma/training-state"
_VERSION = 2
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: The user attribute of a run's first study that names its artifact store's marker
#: (:meth:`StateStore.mark`): ``{"id": <artifact id>, "sha256": <digest of the file>}``.
STORE_MARKER = "artifact_store"


class StateUnavailableError(RuntimeError):
    """A referenced training state is missing or unreadable (it can be recomputed)."""


def check_artifact_id(value: Any, *, where: str) -> str:
    """``value`` if it is an artifact id (a UUID) of this tuner, else ``ValueError``.

    Args:
        value: The reference read from a storage.
        where: What holds the reference, for the message (e.g.
            ``"trial 7 of study 'r/epoch-002'"``).
    """
    if not isinstance(value, str) or not _UUID.match(value):
        raise ValueError(
            f"{where} refers to the state {value!r}, which is not an artifact id of this run's "
            "store; refusing to read or delete it"
        )
    return value


def open_artifact_store(location: Any, default_dir: Path) -> tuple[ArtifactStore, str]:
    """The artifact store for ``location`` and a printable description of it.

    Args:
        location: ``None`` (a :class:`~optuna.artifacts.FileSystemArtifactStore` in
            ``default_dir``), a directory path (shared between machines by NFS or the like),
            ``s3://bucket/prefix`` (a :class:`~optuna.artifacts.Boto3ArtifactStore`; boto3 reads
            credentials and ``AWS_ENDPOINT_URL`` for S3-compatible servers from the usual
            places), or an object implementing Optuna's artifact-store protocol (``open_reader``,
            ``write``, ``remove``).
        default_dir: The run directory's ``artifacts/`` folder.

    Raises:
        ValueError: ``location`` is none of these.
        TunerError: The store cannot be written (checked with a small probe before any trial).
    """
    if isinstance(location, str) and location.startswith("s3://"):
        return _open_s3(location)
    if location is None or isinstance(location, (str, os.PathLike)):
        text = str(location) if location is not None else str(default_dir)
        if "://" in text:
            raise ValueError(
                f"artifact location {text!r}: expected a directory path or s3://bucket/prefix"
            )
        folder = Path(text).expanduser().resolve()
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"artifact location {str(folder)!r} exists and is not a directory")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / ".write-check"
            probe.write_bytes(b"ok\n")
            probe.unlink()
        except OSError as err:
            raise OSError(
                err.errno, f"artifact location {str(folder)!r} is not writable: {err.strerror}"
            ) from err
        return FileSystemArtifactStore(folder), str(folder)
    if all(callable(getattr(location, m, None)) for m in ("open_reader", "write", "remove")):
        return location, type(location).__name__
    raise ValueError(
        f"artifacts must be a directory path, s3://bucket/prefix or an Optuna artifact store, "
        f"got {location!r}"
    )


def reach_artifact_store(location: str) -> ArtifactStore | None:
    """The artifact store at ``location`` (a directory path or ``s3://bucket/prefix``) as it is,
    creating and writing nothing: ``None`` where the directory does not exist on this machine.
    A worker reads its run's marker there (:meth:`StateStore.holds`) before it writes anything.
    """
    if location.startswith("s3://"):
        return _open_s3(location, probe=False)[0]
    folder = Path(location).expanduser().resolve()
    return FileSystemArtifactStore(folder) if folder.is_dir() else None


class PrefixedArtifactStore:
    """Another artifact store with every artifact id prefixed (``prefix/<id>`` keys in a
    bucket)."""

    def __init__(self, inner: ArtifactStore, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def open_reader(self, artifact_id: str) -> Any:
        return self.inner.open_reader(self.prefix + artifact_id)

    def write(self, artifact_id: str, content_body: Any) -> None:
        self.inner.write(self.prefix + artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self.inner.remove(self.prefix + artifact_id)


def _open_s3(location: str, probe: bool = True) -> tuple[ArtifactStore, str]:
    bucket, _, prefix = location[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"artifact location {location!r}: expected s3://bucket/prefix")
    try:
        import boto3
        from botocore.exceptions import BotoCoreError
        from botocore.exceptions import ClientError
    except ImportError as err:
        raise TunerError(
            f"artifact location {location!r} needs boto3: install optuna-gamma[s3]"
        ) from err

    store = PrefixedArtifactStore(Boto3ArtifactStore(bucket, client=boto3.client("s3")), prefix)
    if not probe:
        return store, location
    try:  # a write probe, before any trial
        store.write(".write-check", io.BytesIO(b"ok\n"))
        store.remove(".write-check")
    except (BotoCoreError, ClientError) as err:
        raise TunerError(f"artifact location {location!r} is not writable: {err}") from err
    return store, location


class StateStore:
    """Save, load (verified) and remove training states in an Optuna artifact store."""

    def __init__(self, artifact_store: ArtifactStore, where: str = "") -> None:
        self.artifact_store = artifact_store
        self.where = where or type(artifact_store).__name__
        self._digests: dict[str, str] = {}

    def digest(self, artifact_id: str) -> str:
        """The SHA-256 (hex) of the file this store saved under ``artifact_id`` (recorded with
        the trial or study, and checked by :meth:`load`)."""
        if artifact_id not in self._digests:  # stored by an earlier process: hash the file
            with self.artifact_store.open_reader(artifact_id) as reader:
                self._digests[artifact_id] = hashlib.sha256(reader.read()).hexdigest()
        return self._digests[artifact_id]

    def save(
        self,
        snapshot: dict[str, Any],
        owner: optuna.Trial | optuna.study.Study,
        filename: str,
        *,
        attach: bool = True,
    ) -> str:
        """Store ``snapshot``; return its artifact id.

        Args:
            snapshot: The state's components.
            owner: The trial or study the state belongs to.
            filename: The name optuna-dashboard shows for it.
            attach: Attach it to ``owner`` (:func:`optuna.artifacts.upload_artifact`, listed by
                the dashboard); ``False`` writes it under a fresh UUID only, for a state that
                may be removed later (a trial's state before the adoption). The id is then
                recorded as ``owner``'s user attribute ``state`` *before* the write, so a
                process killed in between leaves no state that :meth:`remove_unadopted` cannot
                find.
        """
        import torch

        payload = {"format": _FORMAT, "version": _VERSION, "components": snapshot}
        buffer = io.BytesIO()
        torch.save(payload, buffer)  # in memory: a failing write is Python's OSError below
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        if not attach:
            artifact_id = str(uuid.uuid4())
            owner.set_user_attr("state", artifact_id)
            try:
                self.artifact_store.write(artifact_id, io.BytesIO(data))
            except OSError as err:
                raise OSError(
                    err.errno,
                    f"cannot write training state {filename} to the artifact store "
                    f"{self.where!r}: {err.strerror or err}",
                ) from err
            self._digests[artifact_id] = digest
            return artifact_id
        # upload_artifact takes a file: stage it in memory-backed /dev/shm where there is one.
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        with tempfile.TemporaryDirectory(prefix="optuna-gamma-", dir=shm) as tmp:
            path = os.path.join(tmp, filename)
            try:
                with open(path, "wb") as f:
                    f.write(data)
            except OSError as err:
                raise OSError(
                    err.errno, f"cannot stage training state {filename} in {tmp}: {err.strerror}"
                ) from err
            try:
                artifact_id = upload_artifact(
                    artifact_store=self.artifact_store, file_path=path, study_or_trial=owner
                )
            except OSError as err:
                raise OSError(
                    err.errno,
                    f"cannot write training state {filename} to the artifact store "
                    f"{self.where!r}: {err.strerror or err}",
                ) from err
        self._digests[artifact_id] = digest
        return artifact_id

    def load(self, artifact_id: str, digest: str | None = None) -> dict[str, Any]:
        """The snapshot stored under ``artifact_id`` (tensors on the CPU).

        Args:
            artifact_id: The state's artifact id.
            digest: The SHA-256 recorded with the state's trial when it was stored (``None``:
                a run from before digests were recorded; not checked).

        Raises:
            StateUnavailableError: Missing, truncated, not a training state of this tuner, or
                not the file its trial stored (another digest: replaced or forged).
        """
        import torch

        try:
            with self.artifact_store.open_reader(artifact_id) as reader:
                data = reader.read()
        except (ArtifactNotFound, FileNotFoundError) as err:
            raise StateUnavailableError(f"training state {artifact_id} is missing") from err
        if digest is not None and hashlib.sha256(data).hexdigest() != digest:
            raise StateUnavailableError(
                f"training state {artifact_id} is unreadable: not the one its trial stored (its "
                "SHA-256 differs from the recorded one: truncated, replaced or forged in the "
                "artifact store)"
            )
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as err:  # truncated or foreign files fail in many ways
            raise StateUnavailableError(
                f"training state {artifact_id} is unreadable ({type(err).__name__}: {err})"
            ) from err
        if (
            not isinstance(payload, dict)
            or payload.get("format") != _FORMAT
            or payload.get("version") != _VERSION
            or not isinstance(payload.get("components"), dict)
        ):
            raise StateUnavailableError(
                f"training state {artifact_id} is not an optuna-gamma state"
            )
        return payload["components"]

    def keep(
        self,
        snapshot: dict[str, Any],
        trial: optuna.trial.FrozenTrial,
        study: optuna.Study,
        storage: optuna.storages.BaseStorage,
    ) -> str:
        """The id under which ``trial``'s state (loaded as ``snapshot``) is kept once adopted.

        A state attached to its trial (``keep_trial_states``) is kept as it is; an unattached
        one is attached to ``study`` as a copy under a new id (the original then goes with the
        other trials' states in :meth:`remove_unadopted`). A readable copy that an earlier,
        interrupted adoption attached already is reused, so a resumed run keeps one copy.
        """
        state_id = check_artifact_id(trial.user_attrs.get("state"), where=f"trial {trial.number}")
        if any(m.artifact_id == state_id for m in get_all_artifact_meta(trial, storage=storage)):
            return state_id
        name = f"{study.study_name.replace('/', '-')}-adopted-trial-{trial.number:04d}.pt"
        for meta in get_all_artifact_meta(study):
            if meta.filename == name:
                try:
                    self.load(check_artifact_id(meta.artifact_id, where=name))
                except StateUnavailableError:
                    continue
                return meta.artifact_id
        return self.save(snapshot, study, name)

    def remove_unadopted(
        self, study: optuna.Study, storage: optuna.storages.BaseStorage, keep: Collection[str]
    ) -> None:
        """Delete the state of every trial of ``study`` but those in ``keep`` (the carried
        states; attached or not)."""
        for t in study.get_trials(deepcopy=False):
            ids = {m.artifact_id for m in get_all_artifact_meta(t, storage=storage)}
            if "state" in t.user_attrs:
                ids.add(t.user_attrs["state"])
            for artifact_id in sorted(ids - set(keep)):
                self.remove(check_artifact_id(artifact_id, where=f"trial {t.number}"))

    def mark(self, run: str) -> dict[str, str]:
        """Write this store's marker for ``run`` and return its record (:data:`STORE_MARKER`).

        The marker is a small text file under a fresh UUID. The run's first study records its
        id and SHA-256, so a process that joins the run later (a worker on another machine, a
        resumed run) can tell whether the store *it* was given is the one holding the run's
        states: the same store reached by another path (a shared folder mounted elsewhere)
        holds the marker, another store (a local folder at the same path on a machine that
        does not share it, an emptied folder) does not (:meth:`holds`).
        """
        artifact_id = str(uuid.uuid4())
        body = (
            f"optuna-gamma: this artifact store holds the training states of run {run!r}\n"
            f"marker {artifact_id}\n"
        ).encode()
        try:
            self.artifact_store.write(artifact_id, io.BytesIO(body))
        except OSError as err:
            raise OSError(
                err.errno,
                f"cannot write to the artifact store {self.where!r}: {err.strerror or err}",
            ) from err
        return {"id": artifact_id, "sha256": hashlib.sha256(body).hexdigest()}

    def holds(self, record: Any, run: str) -> bool:
        """Whether this store holds the marker ``record`` of ``run`` (:meth:`mark`).

        Raises:
            ValueError: ``record`` (read from a storage, so untrusted) is not a marker's record.
            TunerError: The store cannot be read (the message names the cause).
        """
        if not (
            isinstance(record, dict)
            and isinstance(record.get("id"), str)
            and _UUID.match(record["id"])
            and isinstance(record.get("sha256"), str)
            and _SHA256.match(record["sha256"])
        ):
            raise ValueError(
                f"run {run!r} has a malformed record in its storage ({STORE_MARKER}: {record!r})"
            )
        try:
            with self.artifact_store.open_reader(record["id"]) as reader:
                data = reader.read(4096)
        except (ArtifactNotFound, FileNotFoundError):
            return False
        except Exception as err:  # the store's own failure (network, credentials): one line
            raise TunerError(
                f"cannot read the artifact store {self.where!r}: {str(err).splitlines()[0]}"
            ) from err
        return hashlib.sha256(data).hexdigest() == record["sha256"]

    def remove(self, artifact_id: str) -> None:
        """Delete a state (a missing one is fine)."""
        try:
            self.artifact_store.remove(artifact_id)
        except (ArtifactNotFound, FileNotFoundError):
            pass
