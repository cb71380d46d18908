"""Asynchronous requests: the records, the group-committing writer, the dispatcher."""
