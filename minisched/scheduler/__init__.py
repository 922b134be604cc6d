"""minisched.scheduler."""
