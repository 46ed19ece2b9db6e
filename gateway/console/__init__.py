"""The admin console at /console: server-rendered pages over the use cases, signed in with an
API client's id and secret, for the people who run the gateway."""
