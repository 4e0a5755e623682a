"""Private modules of the offline NL-to-SQL generator (see :mod:`avl.llm.offline`)."""
