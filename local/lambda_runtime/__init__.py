"""Lambda's runtime on this machine: what a function imports (`layer`), each function in worker processes
(`functions`, `worker`) with its logs (`logs`), the events Lambda hands it (`events`), and what invokes it:
event sources with their filters and schedules (`sources`, `filters`, `cron`)."""
