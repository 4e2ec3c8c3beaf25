"""Write-back: scores into CRM fields, CSM tasks and in-app messages, through a durable outbox (DESIGN §8)."""
