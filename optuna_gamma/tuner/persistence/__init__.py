"""Where a run lives: the run directory and its lock (:mod:`.runfiles`), storages (:mod:`.storage`,
:mod:`.journal_lock`), training states in an artifact store (:mod:`.states`), and a run's
identity, checked before a resume (:mod:`.identity`)."""
