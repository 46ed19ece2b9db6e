"""The database adapter: engine and migrations, and the SQL the use cases share (row reads
and locks, the invocation state machine's conditional updates, list queries)."""
