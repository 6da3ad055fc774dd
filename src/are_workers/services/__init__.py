"""Plain functions that do the work; ``tasks/`` actors are thin wrappers around them."""
