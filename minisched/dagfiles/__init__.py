"""minisched.dagfiles."""
