"""Pure domain code: workflow specs, the state machine, rules and errors.

Nothing here imports the database, the CLI or the scheduler.
"""
