"""What a signal is, as every stage reads it: its unit (:mod:`~edge.signals.units`) and its
channel names (:mod:`~edge.signals.channels`).

Sources, recordings and the doctor read this vocabulary; it sits below all of them, so neither the
readers of files nor the live sources need the other (docs/architecture.md).
"""
