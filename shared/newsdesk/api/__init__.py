"""HTTP routes (Powertools routers), the one exception-to-HTTP mapping, and the OpenAPI document."""
