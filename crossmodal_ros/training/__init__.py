"""Training: ``crossmodal-train`` (:mod:`.train`) and multi-process data parallelism (:mod:`.distributed`)."""
