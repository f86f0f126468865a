"""One module per `perceus vnfs` verb; each exposes `add(verbs)` (its parser) and the verb function."""
