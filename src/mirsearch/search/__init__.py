"""Search tasks: theme search (symbolic -> audio), audio matching, version identification."""
