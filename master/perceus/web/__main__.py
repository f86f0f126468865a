"""`python -m perceus.web` = `perceus-web`."""

from perceus.web.main import entry

entry()
