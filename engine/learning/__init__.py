"""Churn prediction (DESIGN §6): point-in-time features, candidate models, evaluation, explanations, survival.

Everything here is pure: DataFrames and arrays in, DataFrames and fitted estimators out. Reading the store and
writing files is app/ml's job, so the same code trains on the store's history, on an imported export, or on the
synthetic frames of the benchmark.
"""
