"""Upgrade in place from a Perceus 1.x master (`perceus import perceus1`): read, report, migrate.

Everything here reads the old config and state dirs and never writes them: Berkeley DB files are copied to a
temporary directory before `db_dump` reads the copy, so going back means starting the old daemons again.
"""
