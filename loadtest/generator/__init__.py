"""The open-loop load generator: its specs, shapes, workloads, processes and results."""
