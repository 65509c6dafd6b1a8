"""Stage 2, events → planned Novu operations: the mapping file's rules and the pure planner."""
