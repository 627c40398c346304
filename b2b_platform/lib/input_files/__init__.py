"""The files of an input directory: which are read, skipped or gone, and their manifest."""
