"""The embedded AWS (moto) and where it is corrected to behave as AWS does: moto's server and the template's
resources in it (`embedded`), its corrections (`moto_fixes`), what it lacks (`sqs_move_tasks`, SES's events:
`ses_events`), and its data kept across restarts (`persistence`)."""
