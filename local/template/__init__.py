"""The template as the local stack deploys it: template.yaml as a model (`model`), its intrinsic functions
and parameters resolved to the local stack's names (`resolver`), and as the SAM translator expands it (`sam`)."""
