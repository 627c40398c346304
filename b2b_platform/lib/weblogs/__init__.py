"""Reading web-server access logs: files (plain, gzip) line by line, the combined log
format, client addresses behind proxies, and user agents as devices."""
