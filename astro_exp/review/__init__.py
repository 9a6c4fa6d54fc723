"""The person in the loop: which pictures to label first (:mod:`.queue`), how a person's
anomaly marks re-rank the detector's list (:mod:`.feedback`), both over a catalog
(:mod:`.from_catalog`), and what a round of corrections is worth (:mod:`.simulate`)."""
