"""Module actions applied on the node (typed data from the master, validated here before anything is written)."""
