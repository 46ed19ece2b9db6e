"""The command line's client commands (`gateway login`, `triggers`, `invoke`, ...): a client of
the HTTP API only, importing nothing of the server."""
