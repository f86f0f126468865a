"""The `perceus` command line: `perceus <noun> <verb> [args]`, one module per noun."""
