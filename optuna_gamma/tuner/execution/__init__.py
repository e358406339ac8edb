"""How a run runs: the engine (:mod:`.engine`), parallel workers (:mod:`.workers`,
:mod:`.worker_setup`), the run manifest (:mod:`.manifest`), the progress view (:mod:`.live`),
the trainer-failure policy (:mod:`.failures`, :mod:`.session`) and the finished run's files
(:mod:`.finished`)."""
