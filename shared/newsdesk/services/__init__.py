"""Business logic: plain classes that take their dependencies as arguments."""
