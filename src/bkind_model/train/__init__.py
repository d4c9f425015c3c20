"""Training: the objective (loss terms), the loop and its schedule, convergence signals."""
