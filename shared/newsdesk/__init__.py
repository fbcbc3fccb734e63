"""Newsdesk: the logic, data access and models shared by every function (deployed as a layer)."""
