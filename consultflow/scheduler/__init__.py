"""The worker: APScheduler wiring and the delivery channels (log, SMTP email, webhook)."""
