"""IAM on the local stack: each request read as IAM reads it (`calls`), checked against the caller's role and
policies (`policies`) and its signature checked with its key's secret (`signatures`); SES's verified
identities, the resources a send is authorized against, and its sandbox (`ses_identities`); which grants
of each role the calls used, and the check that every grant was used or allow-listed (`grants`)."""
