"""Triton kernels, one per module with its launcher. Each launcher is the Triton twin
of the reference function of the same name and is registered, by name, in
:mod:`kbald_kernels.backends`; importing this package does not import triton."""
