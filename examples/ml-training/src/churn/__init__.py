"""Churn model: features, training and serving."""
