"""`b2b run` around Dagster: the stages of a refresh, their launch (in this process, in
child processes or through the daemon's queue), selections and stale slices."""
