"""What a run searches and how: the search space (:mod:`.space`), the sampler registry
(:mod:`.samplers`) and the objectives a trial returns (:mod:`.objectives`)."""
