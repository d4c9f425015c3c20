"""Inference: a trained model as a predictor, and extraction over whole videos."""
