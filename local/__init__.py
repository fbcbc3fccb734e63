"""The local runner: `python -m local` runs template.yaml on this machine, on an embedded AWS (moto)."""
