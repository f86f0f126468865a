"""perceus-bus: the master daemon's ZeroMQ loop and its message handlers."""
