"""On-device calibration: a base bundle adapted to one person from a short session, without
TensorFlow (:func:`calibrate`; the design is in docs/design.md §7)."""

from edge.calibration.calibrate import CalibrationResult, calibrate
from edge.calibration.head import fit_head, fit_lda, fuse

__all__ = ["CalibrationResult", "calibrate", "fit_head", "fit_lda", "fuse"]
