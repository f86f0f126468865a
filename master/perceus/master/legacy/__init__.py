"""The legacy TCP 987 listener: serves nodes that still run the Perceus 1.x C provisiond during an upgrade."""
