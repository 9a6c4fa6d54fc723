"""The polite HTTP session every fetch goes through: robots.txt, rate limit, retries, cache."""
