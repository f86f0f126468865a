"""Importers: node lists of other cluster tools (CSM, Rocks, OSCAR, xCAT, Warewulf, DHCP, logs, switches)."""
