"""The model the runtime runs: a window made into the int8 input (:mod:`~edge.model.inputs`), the
int8 TFLite interpreter (:mod:`~edge.model.inference`) and the calibrated head applied to its
embedding (:mod:`~edge.model.head`).

The live path reaches the model here and never climbs into :mod:`edge.calibration`, which fits
heads (docs/architecture.md).
"""
