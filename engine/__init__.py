"""The engine: pure functions over DataFrames and plain data (canonical types, health, churn, expansion).

Nothing here imports from ``app/`` or ``connectors/``; see DESIGN.md section 2.
"""
