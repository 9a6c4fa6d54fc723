"""Real-time monitoring: poll the newest APOD day, classify it, alert on what matters.

:mod:`.watcher` runs the loop (state in the catalog), :mod:`.alerts` decides and delivers
alerts (log line always, webhook optionally), :mod:`.duration` reads ``1h``/``30s`` settings.
"""
