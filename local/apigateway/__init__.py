"""The HTTP API as API Gateway serves it (`server`), and the functions' resource-based policies it must pass
to invoke them (`invoke_policies`)."""
