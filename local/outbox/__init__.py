"""The local outbox: the emails the embedded SES accepted (`emails`), served as JSON and as a page under
/_local/ (`routes`)."""
