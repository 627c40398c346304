"""The warehouse: where it is, opening it (lock wait, lake attach, macros), a recorded
write step in one transaction, the run log, slice versions and the lake's housekeeping."""
