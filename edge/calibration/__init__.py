"""On-device calibration: a base bundle adapted to one person from a short session, without
TensorFlow (:func:`calibrate`; the design is in docs/design.md §7)."""

from edge.calibration.calibrate import CalibrationResult, calibrate
from edge.calibration.head import Head, fit_head

__all__ = ["CalibrationResult", "Head", "calibrate", "fit_head"]
