"""The HTTP service: the publish API, feed files, the home page, /ops and /metrics."""
