"""Acquisition loops. They orchestrate ops chosen by :mod:`kbald_kernels.backends`."""
