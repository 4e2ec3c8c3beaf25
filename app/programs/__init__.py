"""Programs (DESIGN §7): definitions and their versions, enrollment state advanced by the scheduler, outcomes."""
