"""Built-in features (being written)."""
