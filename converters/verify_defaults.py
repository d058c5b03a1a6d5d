"""verify's defaults, in a module of their own so that the CLI can show them without importing verify.

``gateport convert`` builds the whole command line, verify's options included; importing
:mod:`converters.verification` for these few values cost every conversion its imports.
"""

#: float32 tolerances of torch.testing.assert_close.
ATOL, RTOL = 1e-5, 1.3e-6
DEFAULT_TARGETS = ("torch", "onnx")
DEFAULT_STEPS = 6
#: What a pass needs: a reference independent of gateport's reading, or any reference.
REQUIRE = ("independent", "any")
#: Seconds a child torch run may take by default.
DEFAULT_TIMEOUT = 300.0
