"""memlib."""
