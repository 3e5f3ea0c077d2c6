/* Makes edge/_ng_sos a valid (empty) Python extension module; the functions are called via ctypes. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static struct PyModuleDef ng_sos_module = {PyModuleDef_HEAD_INIT, "_ng_sos",
                                           "C fixed-point biquad kernel (use edge.chain.dsp).", -1, NULL,
                                           NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__ng_sos(void) { return PyModule_Create(&ng_sos_module); }
