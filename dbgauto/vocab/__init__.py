"""Names and tables (tier T2): vocabulary shared by the layers above, e.g. the Windows inbox-module list."""
