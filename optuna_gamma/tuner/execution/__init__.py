"""How a run runs.

The engine (:mod:`.engine`) sets a run up and coordinates its parts: the run's studies
(:mod:`.studies`), the training on the run's state (:mod:`.training`), the trials' start states
(:mod:`.start_states`), one trial (:mod:`.trials`) and its score (:mod:`.scoring`), the policy's
plan of a study (:mod:`.planning`), the samplers (:mod:`.sampling`), adoption
(:mod:`.adoption`), dead trials retried (:mod:`.retries`) and the process's device, threads and
storage errors (:mod:`.runtime`). Around it: parallel workers (:mod:`.workers`,
:mod:`.worker_setup`), the run manifest (:mod:`.manifest`), the progress view (:mod:`.live`),
the trainer-failure policy (:mod:`.failures`, :mod:`.session`) and the finished run's files
(:mod:`.finished`).
"""
