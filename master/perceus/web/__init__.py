"""perceus-web: the dashboard, JSON API and Prometheus metrics — its own process, reading the store and the bus's
events, so the bus's hot loop never waits on HTTP.  The agent never imports this package."""
