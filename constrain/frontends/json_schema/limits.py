"""Bounds on the work one schema may cause; past them compiling raises CompileLimitError."""

MAX_ANYOF_PRODUCT = 256
MAX_BUILDS = 50000
MAX_NESTING = 150
MAX_POSITIONS = 20000
MAX_ENUM = 20000
MAX_MERGE_DEPTH = 64
MAX_RULES = 500000
MAX_ORDER_STATES = 2048
