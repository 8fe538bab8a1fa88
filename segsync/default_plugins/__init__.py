"""Built-in features and rule operators, registered through the same hooks plugins use."""
