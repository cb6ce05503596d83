"""Versioned SQL migrations, applied in name order by controlroom.storage.migrate."""
