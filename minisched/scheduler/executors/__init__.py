"""minisched.scheduler.executors."""
