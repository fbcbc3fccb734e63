"""Data access: the only code that talks to AWS. Failures become the project's exceptions."""
