"""What a run shows: evaluation metrics (:mod:`.metrics`), plotly pictures (:mod:`.plots`) and the
offline HTML report (:mod:`.report`)."""
