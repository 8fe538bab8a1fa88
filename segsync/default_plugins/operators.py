"""Built-in operators (being written)."""
