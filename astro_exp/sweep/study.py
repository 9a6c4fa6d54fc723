"""What the sweeper and the trial's own process share: the storage, the pruner, the study and
the heartbeat that tells a live trial from a dead one. Needs the ``sweep`` extra (optuna).

Why one module: the sweeper (which asks for trials) and each job (which reports epochs, asks
whether to stop and tells the result) open the same study independently, possibly on other
machines; both must build the storage and the pruner from the same ``hydra.sweeper`` config.

Storages (``hydra.sweeper.storage``):

- ``sqlite:///path/study.db``: one machine (several local workers are fine);
- ``journal:path/study.log`` (or ``journal:///abs/path``): an append-only file that many
  machines share over NFS (Optuna's JournalFileBackend with an ``open`` lock);
- ``postgresql://...``, ``mysql+pymysql://...``: a database server, for a cluster.

A trial's process beats every ``heartbeat_interval`` seconds; a RUNNING trial whose last beat
is older than ``grace_period`` belongs to a dead worker and is failed by the next worker that
asks for a trial (RDB storages: Optuna's own heartbeat; the journal: a system attribute).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from astro_exp.errors import ConfigError

log = logging.getLogger(__name__)

# heartbeats outside Study.optimize are what ask/tell workers need; Optuna warns about both
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

HEARTBEAT_ATTR = "astro_exp:heartbeat"
PRUNED_EPOCH_ATTR = "pruned_epoch"
_JOURNAL = "journal:"

PRUNERS = {
    "none": "optuna.pruners.NopPruner",
    "median": "optuna.pruners.MedianPruner",
    "percentile": "optuna.pruners.PercentilePruner",
    "hyperband": "optuna.pruners.HyperbandPruner",
    "successive_halving": "optuna.pruners.SuccessiveHalvingPruner",
}


def journal_path(url: str) -> Path | None:
    """The file of a ``journal:`` storage URL; None for other URLs."""
    if not url.startswith(_JOURNAL):
        return None
    rest = url[len(_JOURNAL) :]
    if rest.startswith("//"):  # journal:///abs/path, like sqlite:///
        rest = rest[2:]
    if not rest:
        raise ConfigError(
            f"hydra.sweeper.storage={url}: give the file, e.g. journal:outputs/optuna/search.log"
        )
    return Path(rest)


def open_storage(
    url: str | None, heartbeat_interval: int | None = 60, grace_period: int | None = None
) -> BaseStorage:
    """The study's storage. RDB storages get Optuna's heartbeat; SQLite waits up to 60 s for
    a lock (several local workers write to one file)."""
    if not url:
        raise ConfigError(
            "hydra.sweeper.storage is empty; workers share a study through a storage: "
            "sqlite:///outputs/optuna/s.db, journal:/shared/s.log or postgresql://..."
        )
    url = str(url)
    interval = int(heartbeat_interval) if heartbeat_interval else None
    if interval is not None and interval < 1:
        raise ConfigError(f"hydra.sweeper.heartbeat_interval={interval} must be >= 1 (or null)")
    grace = int(grace_period) if grace_period else (2 * interval if interval else None)
    journal = journal_path(url)
    if journal is not None:
        from optuna.storages.journal import (
            JournalFileBackend,
            JournalFileOpenLock,
            JournalStorage,
        )

        journal.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(journal), lock_obj=JournalFileOpenLock(str(journal)))
        return JournalStorage(backend)
    if "://" not in url:
        raise ConfigError(
            f"hydra.sweeper.storage={url} is not a storage URL; use sqlite:///path.db, "
            "journal:path.log or postgresql://user@host/db"
        )
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 60}}
    try:
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=interval, grace_period=grace
        )
    except (ImportError, ValueError) as e:
        raise ConfigError(f"hydra.sweeper.storage={url}: {e}") from e
    except Exception as e:  # sqlalchemy's OperationalError and friends: the server said no
        raise ConfigError(
            f"hydra.sweeper.storage={url}: cannot open it ({type(e).__name__}: {e})"
        ) from e


def build_pruner(spec: Any) -> optuna.pruners.BasePruner:
    """``hydra.sweeper.pruner``: a name (``median``, ``hyperband``, ``none``, ...), a mapping
    with ``name`` and the pruner's arguments, or a pruner object (Hydra instantiated its
    ``_target_``)."""
    if isinstance(spec, optuna.pruners.BasePruner):
        return spec
    if spec is None:
        return optuna.pruners.NopPruner()
    kwargs: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        kwargs = {k: v for k, v in dict(spec).items() if k != "name"}
        if "_target_" in kwargs:
            from hydra.utils import instantiate

            return instantiate(kwargs)
        spec = dict(spec).get("name")
    name = str(spec).lower()
    if name not in PRUNERS:
        raise ConfigError(
            f"hydra.sweeper.pruner={spec}: no such pruner; use one of {', '.join(PRUNERS)}"
        )
    from hydra.utils import get_class

    try:
        return get_class(PRUNERS[name])(**kwargs)
    except TypeError as e:
        raise ConfigError(f"hydra.sweeper.pruner={name}: {e}") from e


def load_study(storage: BaseStorage, study_name: str, pruner: Any = None) -> optuna.study.Study:
    """An existing study, for a trial's own process (it never samples: a random sampler)."""
    return optuna.load_study(
        study_name=study_name,
        storage=storage,
        pruner=build_pruner(pruner),
        sampler=optuna.samplers.RandomSampler(),
    )


def native_heartbeat(storage: BaseStorage) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


class Heartbeat:
    """Beats for one trial in a daemon thread until :meth:`stop`: Optuna's own for RDB
    storages with a heartbeat, else the time in the trial's system attribute."""

    def __init__(self, storage: BaseStorage, trial_id: int, interval: int | None) -> None:
        self._thread: Any = None
        self._stop = threading.Event()
        if native_heartbeat(storage):
            from optuna.storages._heartbeat import get_heartbeat_thread

            self._thread = get_heartbeat_thread(trial_id, storage)
            self._thread.start()
        elif interval:
            beat = threading.Thread(
                target=self._beat, args=(storage, trial_id, int(interval)), daemon=True
            )
            beat.start()

    def _beat(self, storage: BaseStorage, trial_id: int, interval: int) -> None:
        while True:
            try:
                storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
            except Exception:  # noqa: BLE001 - finished elsewhere or the storage hiccupped
                return
            if self._stop.wait(interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def fail_stale_trials(study: optuna.study.Study, grace_period: int | None) -> list[int]:
    """Fail RUNNING trials whose worker stopped beating; returns their numbers.

    A trial that never beat (its job still waits in a queue) is left alone."""
    failed: list[int] = []
    storage = study._storage
    if native_heartbeat(storage):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        failed = sorted(before - after - _finished_ok(study, before - after))
    elif grace_period:
        now = time.time()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            beat = t.system_attrs.get(HEARTBEAT_ATTR)
            if beat is not None and now - float(beat) > float(grace_period):
                try:
                    storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
                    failed.append(t.number)
                except optuna.exceptions.UpdateFinishedTrialError:
                    pass
    for number in failed:
        log.warning("trial %d: its worker stopped beating; marked failed", number)
    return failed


def _finished_ok(study: optuna.study.Study, numbers: set[int]) -> set[int]:
    """Of ``numbers``, those that finished on their own (not failed) meanwhile."""
    return {
        t.number
        for t in study.get_trials(deepcopy=False)
        if t.number in numbers and t.state != TrialState.FAIL
    }


def finite(value: Any) -> float | None:
    """``value`` as a finite float, else None (a job that returned no usable metric)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
