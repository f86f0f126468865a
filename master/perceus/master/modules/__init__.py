"""Perceus modules on the master: activations, the built-in module set as typed actions, .pmod imports."""
